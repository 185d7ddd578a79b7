"""Running a trained generator on new images: inputs, sizing, backends and output files.

``nectargan infer`` and ``nectargan export`` are built from these modules; the torch
path (a checkpoint) and the onnxruntime path (an exported ``.onnx`` file) share every
step except the forward pass, so they agree on preprocessing by construction.
"""
