"""``nectargan export``: a run's generator as a self-checked ONNX or TorchScript file."""

from __future__ import annotations

import argparse
import sys

from nectargan.cli.commands import add_command, call_with_flags
from nectargan.cli.config_flags import add_epoch_option
from nectargan.cli.infer_cmd import EXIT_FAILED


def cmd_export(args: argparse.Namespace) -> int:
    """export a run's generator to ONNX (or TorchScript), checked against torch

    Writes the generator with input 'input' and output 'output', float32 [N, C, H, W] in
    [-1, 1], batch and spatial axes dynamic (H, W multiples of 2**n_downs) unless --static.
    Checked after export (onnx.checker, then onnxruntime vs torch on images of the run); a
    failed check exits 1 and keeps no file.
    """
    from nectargan.onnx.converter import OnnxExportError
    from nectargan.onnx.export import export_experiment
    from nectargan.onnx.selfcheck import ExportCheckError

    try:
        report = call_with_flags(export_experiment, args, experiment_dir=args.experiment)
    except (ExportCheckError, OnnxExportError) as exc:
        print(f"nectargan export: failed, no file written: {exc}", file=sys.stderr)
        return EXIT_FAILED
    shape = "x".join(map(str, report["static_hw"])) if report.get("static_hw") else "dynamic"
    opset = f", opset {report['opset']}" if "opset" in report else ""
    print(f"exported {report['checkpoint']} -> {report['path']} ({args.fmt}{opset})")
    meta = report["metadata"]
    print(
        f"input [N, {meta['nectargan.channels']}, H, W] float32 in [-1, 1], H and W: "
        f"{'multiples of ' + meta['nectargan.size_multiple'] if shape == 'dynamic' else shape}"
    )
    for line in report.get("checked", []):
        print(f"self-check: {line}")
    print(f"max abs difference vs torch: {report['max_abs_diff']:.2e}")
    return 0


def _static(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of pixels, got {value!r}"
        ) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "export", cmd_export)
    p.add_argument("--experiment", required=True, metavar="DIR", help="experiment directory")
    add_epoch_option(p)
    p.add_argument("--format", dest="fmt", default="onnx", choices=("onnx", "torchscript"))
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="a file, or a folder to write epoch_NNNN.onnx into "
        "(default: DIR/export/epoch_NNNN.onnx, or .torchscript.pt)",
    )
    p.add_argument(
        "--opset",
        dest="opset_version",
        type=int,
        metavar="N",
        help="ONNX opset (default: the exporter's newest; < 18 uses torch's "
        "TorchScript-based exporter)",
    )
    p.add_argument(
        "--static",
        dest="static_hw",
        nargs=2,
        type=_static,
        metavar=("H", "W"),
        help="fixed input height and width",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
