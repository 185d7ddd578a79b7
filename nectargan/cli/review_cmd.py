"""``nectargan replay`` and ``nectargan report``: review finished or crashed runs headlessly."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nectargan.cli.commands import add_command, call_with_flags
from nectargan.errors import ConfigUserError

DEFAULT_SERVER = "http://localhost"
DEFAULT_PORT = 8097


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_replay(subparsers)
    _register_report(subparsers)


def _register_replay(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "replay", cmd_replay)
    p.add_argument("experiments", nargs="+", type=Path, metavar="EXPERIMENT_DIR")
    p.add_argument(
        "--env", default=None, help="Visdom env (default: the run's name, e.g. pix2pix_v3)"
    )
    p.add_argument("--server", default=DEFAULT_SERVER, help="default: %(default)s")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: %(default)s")
    p.add_argument("--clear", action="store_true", help="close the env's other windows first")
    _add_max_image_epochs(p)
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for each request (default: %(default)s)",
    )


def _register_report(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "report", cmd_report)
    p.add_argument("experiments", nargs="+", type=Path, metavar="EXPERIMENT_DIR")
    p.add_argument(
        "--out",
        "--output",
        dest="out",
        metavar="DIR",
        type=Path,
        default=None,
        help="output folder (default: EXPERIMENT_DIR/report; required with several runs)",
    )
    p.add_argument(
        "--smooth",
        type=float,
        default=0.0,
        help="EMA smoothing of the loss curves in [0, 1), e.g. 0.9 (default: 0, off)",
    )
    p.add_argument("--log-scale", action="store_true", help="logarithmic loss axis")
    _add_max_image_epochs(p)


def _add_max_image_epochs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-image-epochs",
        type=int,
        default=50,
        help="show examples of at most N epochs, evenly spread (0: all; default: %(default)s)",
    )


def _check_options(args: argparse.Namespace) -> None:
    """Refuse bad numbers up front, naming the flag and the value."""
    if args.max_image_epochs < 0:
        raise ConfigUserError(
            f"--max-image-epochs must be >= 0 (0: all), got {args.max_image_epochs}"
        )
    timeout = getattr(args, "timeout", None)
    if timeout is not None and not timeout > 0:
        raise ConfigUserError(f"--timeout must be a positive number of seconds, got {timeout}")
    smooth = getattr(args, "smooth", None)
    if smooth is not None and not 0.0 <= smooth < 1.0:
        raise ConfigUserError(f"--smooth must be in [0, 1) (0: off, 0.9: strong), got {smooth}")
    if getattr(args, "port", None) is not None and not 0 < args.port < 65536:
        raise ConfigUserError(f"--port must be in 1..65535, got {args.port}")


def cmd_replay(args: argparse.Namespace) -> int:
    """rebuild a run's loss graphs, example triplets and summary in a Visdom env

    Replay one run (losses, examples per epoch, config and timing) into a Visdom env, or
    several runs into one env to compare them: their losses and validation metrics overlaid,
    and a table of each run's best epoch, speed and the config keys that differ.
    """
    from nectargan.review.compare import read_experiments
    from nectargan.review.replay import replay

    _check_options(args)
    if args.env is not None and not args.env.strip():
        raise ConfigUserError(f"--env must be a non-empty name, got {args.env!r}")
    experiments = read_experiments(args.experiments)
    result = call_with_flags(replay, args, experiments=experiments)
    names = ", ".join(e.name for e in experiments)
    print(f"replayed {names} into env {result.env!r}: {result.url}")
    for win, traces in result.points.items():
        counts = ", ".join(f"{name} {n}" for name, n in traces.items())
        print(f"  {win}: {counts} points")
    if result.image_epochs:
        epochs = result.image_epochs
        print(f"  examples: {len(epochs)} epoch(s), {epochs[0]}..{epochs[-1]} (slider)")
    mb = result.bytes_sent / 1e6
    print(f"  sent {result.requests} requests, {mb:.1f} MB in {result.seconds:.2f} s")
    _print_comparison(experiments)
    _print_skipped(experiments, result.notes)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """write a static HTML report of a run, or a comparison page of several

    Write an offline HTML page about one run: PNG loss curves, the example triplets per
    epoch, test metrics and the effective config. With several runs, a comparison page (best
    epochs, overlaid curves, config differences, latest examples) linking a single-run
    report of each.
    """
    from nectargan.review.compare import read_experiments

    _check_options(args)
    if len(args.experiments) > 1 and args.out is None:
        raise ConfigUserError(
            f"a report of {len(args.experiments)} runs needs --output DIR: the folder to write "
            "the comparison page into (a new or empty one, or an earlier report's)"
        )
    experiments = read_experiments(args.experiments)
    options = {
        "smooth": args.smooth,
        "log_scale": args.log_scale,
        "max_image_epochs": args.max_image_epochs,
    }
    if len(experiments) == 1:
        from nectargan.review.report import write_report

        result = write_report(experiments[0], args.out, **options)
    else:
        from nectargan.review.compare_report import write_comparison

        result = write_comparison(experiments, args.out, **options)
    print(f"report written: {result.html} ({len(result.images)} images)")
    _print_comparison(experiments)
    _print_skipped(experiments, result.notes)
    return 0


def _print_comparison(experiments: list[Any]) -> None:
    """With several runs, one line each: best epoch and metrics, epochs done, speed."""
    if len(experiments) < 2:
        return
    from nectargan.review import compare
    from nectargan.review.replay import run_labels

    for summary in compare.summarize(experiments, run_labels(experiments)):
        print(f"  {compare.summary_line(summary)}")
    differing = [key for key, _ in compare.config_differences(experiments)]
    print(f"  config keys that differ: {', '.join(differing) if differing else 'none'}")


def _print_skipped(experiments: list[Any], notes: list[str]) -> None:
    """Say what was not shown and why: crashed-run logs, missing images, caps."""
    for exp in experiments:
        for problem in exp.problems:
            print(f"  skipped ({exp.name}): {problem}")
    for note in notes:
        print(f"  note: {note}")
