"""``nectargan infer``: run a trained generator (checkpoint or ``.onnx``) on new images."""

from __future__ import annotations

import argparse
import sys

from nectargan.cli.commands import add_command, call_with_flags
from nectargan.cli.config_flags import add_epoch_option
from nectargan.errors import UserError

# Bad input raises a UserError, which the CLI's one handler turns into a line and exit 2.
EXIT_FAILED = 1


class _BadOption(UserError, ValueError):
    """An option value this command cannot use."""


def _backend(args: argparse.Namespace):
    if args.model:
        from nectargan.onnx.tester import load_backend

        return load_backend(args.model, args.device)
    from nectargan.inference.backends import TorchBackend
    from nectargan.inference.checkpoints import load_inference_generator
    from nectargan.trainers.precision import resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise _BadOption(f"--device: {exc}") from exc
    generator, _, info, path = load_inference_generator(args.experiment, args.epoch, device)
    print(f"model: {path} (after epoch {info.epoch})", file=sys.stderr)
    return TorchBackend(generator, info, device)


def _tile(text: str) -> int | None:
    if text.strip().lower() == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a tile size in pixels, 0 (off) or auto, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a tile size in pixels, 0 (off) or auto, got {value}"
        )
    return value


def _budget(text: str) -> int:
    from nectargan.inference.memory import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_infer(args: argparse.Namespace) -> int:
    """run a trained generator on new images (checkpoint or exported .onnx)

    Writes OUT/<stem>.png for every input image, at the input's own size. Sides that are not
    multiples of 2**n_downs are reflect-padded and cropped back (default: every pixel at its
    own resolution, no distortion); --resize scales to the training crop size and back
    instead. The generator runs in eval mode, as in `nectargan test`.
    """
    from nectargan.inference.runner import InferOptions, run_on_inputs

    if args.model and args.epoch != "latest":
        raise _BadOption("--epoch applies to --experiment checkpoints, not to --model files")
    backend = _backend(args)
    options = call_with_flags(InferOptions, args, mode="resize" if args.resize else "pad")
    result = run_on_inputs(backend, args.inputs, args.output, options, args.recursive)
    rate = result["n_images"] / result["seconds"] if result["seconds"] > 0 else float("nan")
    print(
        f"wrote {result['n_images']} image(s) to {args.output} "
        f"({backend.name}, {result['mode']}, {rate:.2f} images/s)"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "infer", cmd_infer)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--experiment", metavar="DIR", help="experiment directory (its checkpoint)")
    src.add_argument("--model", metavar="FILE.onnx", help="an exported ONNX model (onnxruntime)")
    add_epoch_option(p)  # with --experiment
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("--output", "-o", required=True, metavar="OUT", help="output folder")
    p.add_argument("--recursive", action="store_true", help="also read folders' subfolders")
    p.add_argument(
        "--paired",
        action="store_true",
        help="inputs are A|B training-style pairs: use the input half (A, or B for BtoA runs)",
    )
    p.add_argument(
        "--resize",
        action="store_true",
        help="scale to the training crop size and back instead of padding",
    )
    p.add_argument("--side-by-side", action="store_true", help="write input | output images")
    p.add_argument("--batch-size", type=int, default=1, metavar="N", help="images per forward pass")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (never an input image: that is refused)",
    )
    p.add_argument(
        "--tile",
        type=_tile,
        default=None,
        metavar="N|0|auto",
        help="run large images as N px tiles blended over an overlap (rounded up to a multiple "
        "of 2**n_downs); auto (default): only when one pass would exceed --memory-budget; 0: never",
    )
    p.add_argument(
        "--tile-overlap",
        type=int,
        default=None,
        metavar="PX",
        help="pixels shared by neighbouring tiles (default: a quarter tile, a multiple of 2**n_downs)",
    )
    p.add_argument(
        "--memory-budget",
        type=_budget,
        default=None,
        metavar="SIZE",
        help="memory one forward pass may use before --tile auto tiles, e.g. 2G or 1500M "
        "(default: half the memory available on the device)",
    )
