"""``nectargan config show | check | schema | import``: the effective config, validation, the
JSON Schema for editors, and conversion of upstream NectarGAN configs.

Errors are :class:`~nectargan.errors.UserError` subclasses, printed by ``cli/main.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nectargan.cli.commands import add_command
from nectargan.cli.config_flags import add_config_options, config_from_args
from nectargan.config import Config
from nectargan.config.config import read_json
from nectargan.config.schema import NectarConfig
from nectargan.config.upstream import convert, is_upstream
from nectargan.errors import ConfigUserError
from nectargan.utils.atomic import atomic_write_text
from nectargan.utils.outputs import output_file


def cmd_show(args: argparse.Namespace) -> int:
    """print the effective config (defaults, file, overrides)"""
    print(json.dumps(config_from_args(args).to_dict(), indent=2))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """validate a config file; every problem at once"""
    Config.load(Path(args.file))
    print(f"{args.file}: valid")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    """print the JSON Schema of configs (editor completion)"""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **NectarConfig.model_json_schema(),
    }
    print(json.dumps(schema, indent=2))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """convert an upstream NectarGAN config ({"config": {...}}) into ours"""
    source, output = Path(args.file), Path(args.output)
    data = read_json(source)
    if not is_upstream(data):
        raise ConfigUserError(
            f'{source}: not an upstream NectarGAN config (expected a top-level "config" '
            "object); ours can be checked with: nectargan config check FILE"
        )
    output_file(output, "--output", "a .json file name")
    if output.exists() and not args.force:
        raise ConfigUserError(f"--output: {str(output)!r} exists; pass --force to overwrite it")
    converted, notes = convert(data)
    Config(converted, source=f"{source} converted")  # refuses what our schema would not run
    atomic_write_text(output, json.dumps(converted, indent=2) + "\n")
    print(f"wrote {output} (keys not given take our defaults; see docs/config.md)")
    if notes:
        print(f"{len(notes)} upstream key(s) not mapped, or mapped approximately:")
        for note in notes:
            print(f"  {note}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``config`` with its four sub-commands to the top-level CLI."""
    p = subparsers.add_parser(
        "config",
        help="show, check, describe (JSON Schema) or import (upstream NectarGAN) configs",
        description="Configs are JSON; every key is described in docs/config.md.",
    )
    sub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)

    show = add_command(sub, "show", cmd_show)
    add_config_options(show)

    check = add_command(sub, "check", cmd_check)
    check.add_argument("file", metavar="FILE")

    add_command(sub, "schema", cmd_schema)

    imp = add_command(sub, "import", cmd_import)
    imp.add_argument("file", metavar="UPSTREAM.json")
    imp.add_argument("--output", required=True, metavar="OURS.json")
    imp.add_argument("--force", action="store_true", help="overwrite --output if it exists")
