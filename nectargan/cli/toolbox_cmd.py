"""``nectargan toolbox`` (and ``nectargan-toolbox``): the browser workbench.

Only argparse is imported here: building the ``nectargan`` parser must stay
cheap, and the Toolbox itself starts without torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nectargan.cli.commands import add_command

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "toolbox", cmd_toolbox)
    add_options(p)


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root",
        action="append",
        metavar="DIR",
        help="a folder the Toolbox may read and write (repeatable; default: the current folder)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="default: %(default)s")
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default: %(default)s, this machine only)",
    )
    p.add_argument("--open", action="store_true", help="open the URL in a browser")
    p.add_argument(
        "--state-dir",
        type=Path,
        help="where the queue and settings are kept (default: NectarGAN's data folder/toolbox)",
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another Host name the Toolbox answers to (e.g. behind a proxy; repeatable)",
    )


def cmd_toolbox(args: argparse.Namespace) -> int:
    """the browser workbench: start, watch, stop, resume and queue training runs

    Serve the NectarGAN Toolbox on this machine; open the printed URL.
    """
    from nectargan.toolbox.context import ToolboxOptions
    from nectargan.toolbox.paths import resolve_roots
    from nectargan.toolbox.serve import ToolboxError, serve

    if not 1 <= args.port <= 65535:
        raise ToolboxError(f"--port: expected 1-65535, got {args.port}")
    roots = resolve_roots(args.root or [Path.cwd()])
    options = ToolboxOptions(
        roots=roots,
        state_dir=args.state_dir or default_state_dir(),
        host=args.host,
        port=args.port,
        allow_hosts=tuple(args.allow_host),
    )
    return serve(options, open_browser=args.open)


def default_state_dir() -> Path:
    from nectargan.visualizer.visdom.server import data_dir

    return data_dir() / "toolbox"


def run() -> None:
    """The ``nectargan-toolbox`` console script: ``nectargan toolbox`` under upstream's name.

    It parses only the Toolbox's options: building the whole ``nectargan`` parser
    would import every command's modules (pydantic, numpy) and slow the start.
    """
    from nectargan.cli.main import execute

    parser = argparse.ArgumentParser(
        prog="nectargan-toolbox", description="Serve the NectarGAN Toolbox; open the printed URL."
    )
    add_options(parser)
    args = parser.parse_args(sys.argv[1:])
    args.command, args.func = "toolbox", cmd_toolbox
    sys.exit(execute(args))
