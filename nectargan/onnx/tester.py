"""Run an exported ``.onnx`` generator with onnxruntime over images or a folder.

Upstream NectarGAN's tester showed one image; this one is what ``nectargan infer
--model FILE.onnx`` runs: the same input collection, sizing and output writing as the
checkpoint path, with only the forward pass on onnxruntime. Needs onnxruntime alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, TextIO

from nectargan.errors import DataUserError
from nectargan.inference.backends import OnnxBackend
from nectargan.inference.model_info import ModelInfo
from nectargan.inference.runner import InferOptions, run_on_inputs
from nectargan.onnx.deps import require
from nectargan.onnx.metadata import info_from_metadata

PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider"]}


class ModelFileError(DataUserError):
    """An ``.onnx`` file that is missing or that onnxruntime cannot load."""


def providers_for(device: str, available: list[str]) -> list[str]:
    """onnxruntime execution providers for ``auto``, ``cpu`` or ``cuda[:N]``."""
    kind = device.split(":")[0]
    if kind == "auto":
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    if kind not in PROVIDERS:
        raise DataUserError(f"--device: expected 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    wanted = PROVIDERS[kind]
    if not set(wanted) <= set(available):
        raise DataUserError(
            f"--device {device!r}: this onnxruntime has no {wanted[0]} "
            f"(available: {', '.join(available)}); use --device cpu"
        )
    return wanted


def open_session(path: str | Path, device: str = "cpu", threads: int = 0) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path`` on ``device``."""
    (ort,) = require("onnxruntime", purpose="running an .onnx model")
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"model file '{path}' is a folder; expected an .onnx file")
    if not path.is_file():
        raise ModelFileError(f"model file '{path}' does not exist")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    providers = providers_for(device, ort.get_available_providers())
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelFileError(f"cannot load '{path}' as an ONNX model: {exc}{_hint(path)}") from exc


def _hint(path: Path) -> str:
    """What to do with the file ``--model`` was most likely given by mistake."""
    if path.name.endswith(".pt"):
        return (
            "; --model takes an .onnx file (nectargan export --format onnx); for a run's "
            "checkpoints use --experiment DIR"
        )
    return ""


def model_info(session: Any) -> ModelInfo:
    """From our ``metadata_props``; for a foreign model, from the graph's input shape."""
    info = info_from_metadata(dict(session.get_modelmeta().custom_metadata_map))
    if info is not None:
        return info
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or not isinstance(shape[1], int):
        raise ModelFileError(
            f"the model's input has shape {shape}; expected a NectarGAN export or an "
            "image model with input [N, C, H, W] and a fixed C"
        )
    static = (shape[2], shape[3]) if all(isinstance(v, int) for v in shape[2:]) else None
    return ModelInfo(
        channels=shape[1],
        n_downs=0,
        crop_size=static[0] if static else 256,
        static_hw=static,
    )


def load_backend(path: str | Path, device: str = "cpu", threads: int = 0) -> OnnxBackend:
    session = open_session(path, device, threads)
    info = model_info(session)
    foreign = info_from_metadata(dict(session.get_modelmeta().custom_metadata_map)) is None
    return OnnxBackend(session, info, foreign)


def run_onnx_model(
    model_path: str | Path,
    inputs: str | Path | list[str],
    output_dir: str | Path,
    device: str = "cpu",
    recursive: bool = False,
    stream: TextIO | None = None,
    **options: Any,
) -> dict:
    """Run ``model_path`` over ``inputs`` (a folder, file, glob or a list of them).

    ``options`` are :class:`InferOptions` fields (``mode``, ``paired``,
    ``side_by_side``, ``batch_size``, ``overwrite``). Returns the run's summary.
    """
    specs = [str(inputs)] if isinstance(inputs, str | Path) else [str(s) for s in inputs]
    backend = load_backend(model_path, device)
    return run_on_inputs(
        backend, specs, output_dir, InferOptions(**options), recursive, stream or sys.stderr
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m nectargan.onnx.tester MODEL.onnx INPUT... -o OUT``: ``infer --model``.

    Runs the command line as a program rather than importing it: the CLI is the
    top layer, which this module sits below (docs/architecture.md).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-"):
        print("usage: python -m nectargan.onnx.tester MODEL.onnx INPUT... -o OUT [infer options]")
        return 2
    command = [sys.executable, "-m", "nectargan", "infer", "--model", argv[0], *argv[1:]]
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
