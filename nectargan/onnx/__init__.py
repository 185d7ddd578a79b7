"""ONNX export and ONNX inference, at the upstream NectarGAN module paths.

* :mod:`nectargan.onnx.converter`: ``ONNXConverter`` (upstream API) and ``export_onnx``.
* :mod:`nectargan.onnx.tester`: run an ``.onnx`` model over images or a folder.

Needs the optional extra: ``pip install 'nectargan[export]'`` (onnx, onnxruntime,
onnxscript). Importing this package does not import them; using it tells you what
is missing.
"""
