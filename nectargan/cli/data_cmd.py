"""`nectargan data ...`: make, pair and split paired datasets from the command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable


def _user_files(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Every path a data command touches is the user's: an OS refusal there is a user error."""

    def run(args: argparse.Namespace) -> int:
        from nectargan.errors import user_files

        with user_files(f"{args.data_command}"):
            return fn(args)

    return run


@_user_files
def cmd_synth(args: argparse.Namespace) -> int:
    # Imported here so `nectargan --help` does not pay for importing torch.
    from nectargan.dataset.synth import generate_synthetic_dataset

    start = time.perf_counter()
    out = generate_synthetic_dataset(
        args.out,
        n=args.n,
        size=args.size,
        seed=args.seed,
        ratios=args.ratios,
        overwrite=args.overwrite,
    )
    print(
        f"synthetic dataset: {args.n} pairs of {args.size}px in {out} "
        f"({time.perf_counter() - start:.1f}s)"
    )
    return 0


@_user_files
def cmd_pair(args: argparse.Namespace) -> int:
    from nectargan.dataset.tools import pair_folders

    counts = pair_folders(args.a_dir, args.b_dir, args.out, resize=args.resize)
    detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
    print(f"paired {sum(counts.values())} images into {args.out} ({detail})")
    return 0


@_user_files
def cmd_split(args: argparse.Namespace) -> int:
    from nectargan.dataset.tools import split_dataset

    counts = split_dataset(args.src, args.out, ratios=args.ratios, seed=args.seed)
    detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
    print(f"split {sum(counts.values())} images into {args.out} ({detail})")
    return 0


def _ratios_arg(p: argparse.ArgumentParser, default: list[float]) -> None:
    p.add_argument(
        "--ratios",
        type=float,
        nargs=3,
        default=default,
        metavar=("TRAIN", "VAL", "TEST"),
        help="split fractions, summing to 1 (default: %(default)s)",
    )


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="generate the built-in synthetic paired dataset",
        description="Label maps of random shapes (A) -> shaded renderings (B).",
    )
    p.add_argument("out", help="output folder (gets train/ val/ test/)")
    p.add_argument("--n", type=int, default=1000, help="number of pairs (default: %(default)s)")
    p.add_argument("--size", type=int, default=64, help="side in pixels (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    _ratios_arg(p, [0.8, 0.1, 0.1])
    p.add_argument("--overwrite", action="store_true", help="replace images already in OUT")
    p.set_defaults(func=cmd_synth)


def _add_pair(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pair",
        help="join A and B folders into side-by-side A|B images",
        description="Match images by file name (without extension). If both "
        "folders hold train/val/test subfolders, each is paired separately.",
    )
    p.add_argument("a_dir", help="folder of A (input) images")
    p.add_argument("b_dir", help="folder of B (target) images")
    p.add_argument("out", help="output folder")
    p.add_argument("--resize", action="store_true", help="resize B to A's size when they differ")
    p.set_defaults(func=cmd_pair)


def _add_split(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("split", help="copy a folder of images into train/val/test by ratio")
    p.add_argument("src", help="folder of A|B images")
    p.add_argument("out", help="output folder (gets train/ val/ test/)")
    _ratios_arg(p, [0.8, 0.1, 0.1])
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default: %(default)s)")
    p.set_defaults(func=cmd_split)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `data` (with synth, pair, split) to a top-level CLI's subparsers."""
    data = subparsers.add_parser("data", help="create, pair and split paired datasets")
    sub = data.add_subparsers(dest="data_command", metavar="{synth,pair,split}")
    for add in (_add_synth, _add_pair, _add_split):
        add(sub)

    def show_help(_args: argparse.Namespace) -> int:
        data.print_help(sys.stderr)
        return 2

    data.set_defaults(func=show_help)
    return data
