"""The ``nectargan`` command: one sub-command module per job, registered here."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes ``register(subparsers)``; a missing one (a feature not
# installed in this checkout yet) is skipped rather than breaking the others.
COMMAND_MODULES = (
    "nectargan.cli.visdom_cmd",
    "nectargan.cli.data_cmd",
    "nectargan.cli.train_cmd",
    "nectargan.cli.review_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nectargan",
        description="Train Pix2pix-style GANs headlessly and watch them learn live in Visdom.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # e.g. for `train --nproc`, which relaunches itself under torchrun
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
