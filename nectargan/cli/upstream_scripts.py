"""Upstream NectarGAN's console scripts, ``nectargan-train-paired`` and ``nectargan-test-paired``.

They take upstream's flags and config files and run ``nectargan train`` /
``nectargan test``: each translates its arguments into ours and calls the
same command, so there is one implementation of training and testing. An
upstream config file is imported on the fly (as ``nectargan config import``
does), with a one-line notice saying so.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nectargan.cli.main import main
from nectargan.config import Config
from nectargan.config.schema import LOSS_SUBSPECS
from nectargan.errors import ConfigUserError, UserError

TRAIN_PROG = "nectargan-train-paired"
TEST_PROG = "nectargan-test-paired"
UPSTREAM_TEST_IMAGES = 10  # upstream's default for -i


def _train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=TRAIN_PROG,
        description="Upstream NectarGAN's training script: runs `nectargan train` with an "
        "upstream (or our) config file.",
    )
    p.add_argument("-f", "--config_file", metavar="CONFIG", help="upstream or NectarGAN config")
    p.add_argument(
        "-lss",
        "--loss_subspec",
        default="basic",
        choices=LOSS_SUBSPECS,
        help="pix2pix loss subspec (train.loss.subspec; default: basic)",
    )
    p.add_argument(
        "-log", "--log_losses", action="store_true", help="write the loss log (save.log_losses)"
    )
    return p


def _test_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=TEST_PROG,
        description="Upstream NectarGAN's test script: runs `nectargan test` on an experiment.",
    )
    p.add_argument("-e", "--experiment_directory", required=True, metavar="DIR")
    p.add_argument(
        "-f",
        "--config_file",
        metavar="CONFIG",
        help="upstream or NectarGAN config: its dataroot and device are used (the network is "
        "the checkpoint's own)",
    )
    p.add_argument("-d", "--dataroot", metavar="DATAROOT", help="dataset with a test/ split")
    p.add_argument("-l", "--load_epoch", type=int, metavar="EPOCH", help="checkpoint epoch")
    p.add_argument(
        "-i",
        "--test_iterations",
        type=int,
        default=UPSTREAM_TEST_IMAGES,
        metavar="N",
        help=f"test images to run (default: {UPSTREAM_TEST_IMAGES})",
    )
    return p


def load_config_file(path: str, prog: str) -> dict[str, Any]:
    """Our config as a dict: an upstream file is converted, with a notice; ours is read as is."""
    from nectargan.config.upstream_load import load_accepting_upstream

    return Config.load(load_accepting_upstream(path, prog)).to_dict()


def _reporting_user_errors(prog: str, run: Callable[[], int]) -> int:
    """``run()``; a problem with the user's config file is one line and exit 2, as in ``main``."""
    try:
        return run()
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code


def train_paired_main(argv: list[str] | None = None) -> int:
    """``nectargan-train-paired [-f CONFIG] [-lss SUBSPEC] [-log]`` -> ``nectargan train``.

    Upstream logs losses only with ``-log``; so does this (``save.log_losses``).
    """
    args = _train_parser().parse_args(argv)
    overrides = [
        *("--set", f"train.loss.subspec={args.loss_subspec}"),
        *("--set", f"save.log_losses={json.dumps(args.log_losses)}"),
    ]

    def run() -> int:
        if args.config_file is None:
            return main(["train", *overrides], prog=TRAIN_PROG)
        config = load_config_file(args.config_file, TRAIN_PROG)
        with tempfile.TemporaryDirectory(prefix="nectargan-upstream-") as tmp:
            # the run exports its effective config into its experiment directory
            path = Path(tmp) / f"{Path(args.config_file).stem}.json"
            path.write_text(json.dumps(config))
            return main(["train", "--config", str(path), *overrides], prog=TRAIN_PROG)

    return _reporting_user_errors(TRAIN_PROG, run)


def test_paired_main(argv: list[str] | None = None) -> int:
    """``nectargan-test-paired -e DIR [-f CONFIG] [-d DATAROOT] [-l EPOCH] [-i N]`` ->
    ``nectargan test --experiment DIR [--dataroot D] [--epoch N] --max-images N``.

    The network is always the checkpoint's own; ``-f`` supplies the dataroot (unless ``-d``
    is given) and the device, as upstream's tester takes them from its config.
    """
    args = _test_parser().parse_args(argv)
    if args.test_iterations < 1:
        print(
            f"{TEST_PROG}: error: -i: expected a number of images >= 1, got {args.test_iterations}",
            file=sys.stderr,
        )
        return ConfigUserError.exit_code

    def run() -> int:
        ours = ["test", "--experiment", args.experiment_directory]
        ours += ["--max-images", str(args.test_iterations)]
        if args.load_epoch is not None:
            ours += ["--epoch", str(args.load_epoch)]
        dataroot, device = args.dataroot, None
        if args.config_file is not None:
            config = Config.load(load_config_file(args.config_file, TEST_PROG))
            dataroot = dataroot or config.dataloader.dataroot
            device = config.common.device
        if dataroot:
            ours += ["--dataroot", str(dataroot)]
        if device:
            ours += ["--device", device]
        return main(ours, prog=TEST_PROG)

    return _reporting_user_errors(TEST_PROG, run)
