"""What every ``nectargan`` subcommand module needs: declare a subcommand in one call, and hand
its parsed flags to the library function (or options dataclass) whose parameters they name.

A flag whose ``dest`` is the parameter's name travels by itself, so adding an option to a
command is one flag and one parameter, not a third line copying one into the other.
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

Handler = Callable[[argparse.Namespace], int]
T = TypeVar("T")

_BY_NAME = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    func: Handler,
    help: str | None = None,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand and the handler ``main`` calls; returns its parser for the flags.

    The handler's docstring is the command's help: its first paragraph the one line the
    parent's ``--help`` lists, the rest the description of its own ``--help``, so the text a
    user reads stands next to the code it describes. ``help``/``description`` replace them
    (text built at run time, e.g. from a table)."""
    summary, _, rest = (inspect.getdoc(func) or "").partition("\n\n")
    parser = sub.add_parser(
        name,
        help=help if help is not None else " ".join(summary.split()),
        description=description if description is not None else (" ".join(rest.split()) or None),
    )
    parser.set_defaults(func=func)
    return parser


def call_with_flags(target: Callable[..., T], args: argparse.Namespace, /, **given: Any) -> T:
    """``target(**given, name=args.name, ...)`` for every other parameter ``target`` takes by
    name that ``args`` has a flag for; parameters with no flag keep their defaults."""
    names = [
        p.name
        for p in inspect.signature(target).parameters.values()
        if p.kind in _BY_NAME and p.name not in given and hasattr(args, p.name)
    ]
    return target(**given, **{name: getattr(args, name) for name in names})
