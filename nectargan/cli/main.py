"""The ``nectargan`` command: one sub-command module per job, registered here.

Errors are handled once, here: a :class:`~nectargan.errors.UserError` (bad
input, a missing file, no server) is printed as one line and exits 2; any
other exception is a bug, so it keeps its traceback, says where to report it
and exits 1; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from nectargan.errors import UserError
from nectargan.utils.launch import launched_world_size
from nectargan.utils.plugins import present_modules

# Each module exposes ``register(subparsers)``; a missing one (a feature not
# installed in this checkout yet) is skipped rather than breaking the others.
COMMAND_MODULES = (
    "nectargan.cli.visdom_cmd",
    "nectargan.cli.data_cmd",
    "nectargan.cli.train_cmd",
    "nectargan.cli.review_cmd",
    "nectargan.cli.config_cmd",
    "nectargan.cli.infer_cmd",
    "nectargan.cli.export_cmd",
    "nectargan.cli.toolbox_cmd",
)
# Commands that must start fast get a parser holding only themselves when typed first:
# registering every command imports their modules (pydantic, numpy, PIL: ~0.4 s).
FAST_COMMANDS = {"toolbox": "nectargan.cli.toolbox_cmd"}
# Sub-command attributes argparse sets for command groups (``nectargan data pair``).
SUBCOMMAND_DESTS = ("data_command", "visdom_command", "config_command")
ISSUES_FALLBACK = "the NectarGAN issue tracker"
EXIT_BUG = 1
EXIT_INTERRUPTED = 130


def build_parser(modules: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    """The ``nectargan`` parser with ``modules``' commands. A fast command's parser holds
    it alone, yet its help, usage and errors read the same: a sub-parser knows only its
    own options, and the top-level usage names no command."""
    parser = argparse.ArgumentParser(
        prog="nectargan",
        description="Train Pix2pix-style GANs headlessly and watch them learn live in Visdom.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in present_modules(modules):
        module.register(subparsers)
    return parser


def command_name(args: argparse.Namespace) -> str:
    """``nectargan data pair``: the words the user typed to reach the failing command."""
    if getattr(args, "prog", None):  # a script of its own (nectargan-train-paired)
        return str(args.prog)
    words = ["nectargan", getattr(args, "command", None)]
    words += [getattr(args, dest, None) for dest in SUBCOMMAND_DESTS]
    return " ".join(w for w in words if isinstance(w, str) and w)


def issues_url() -> str:
    """Where bugs go: the package's ``Issues`` project URL when it declares one."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        urls = metadata("nectargan").get_all("Project-URL") or []
    except (ImportError, PackageNotFoundError):
        return ISSUES_FALLBACK
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("issues", "bug tracker", "bugs") and url.strip():
            return url.strip()
    return ISSUES_FALLBACK


def report_bug(args: argparse.Namespace) -> None:
    """The traceback, then one line saying this is a bug and where to report it."""
    traceback.print_exc()
    print(
        f"{command_name(args)}: internal error: this is a bug in NectarGAN (or a library it "
        f"uses), not a problem with your input; please report it to {issues_url()} with the "
        "traceback above and the command you ran",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run one command; ``prog`` names it in error lines when a script of its own ran it."""
    argv = sys.argv[1:] if argv is None else list(argv)
    fast = FAST_COMMANDS.get(argv[0]) if argv else None
    parser = build_parser((fast,)) if fast else build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # e.g. for `train --nproc`, which relaunches itself under torchrun
    args.prog = prog
    return execute(args)


def execute(args: argparse.Namespace) -> int:
    """Run the parsed command with the one error policy (also for ``nectargan-toolbox``,
    which parses its own arguments so it starts without loading every other command)."""
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # Ctrl-C 130, SIGTERM 143 (nectargan.trainers.signals)
        print("interrupted", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_INTERRUPTED))
    except UserError as exc:
        print(f"{command_name(args)}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception:
        report_bug(args)
        return EXIT_BUG


def run() -> None:
    """The process entry point (``nectargan``, ``python -m nectargan``, ``torchrun -m``).

    A rank of a distributed job ends without Python's finalization: gloo's worker
    threads may still be releasing the last collective's tensors, and a thread that
    needs the GIL once the interpreter is finalizing aborts the whole process
    ("terminate called without an active exception", SIGABRT), failing a job that
    had finished and leaving the other nodes' torchrun waiting at its exit barrier.
    By then the trainer has closed: files flushed, lock released, group destroyed.
    """
    code = main()
    if launched_world_size() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
