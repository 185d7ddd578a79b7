"""The two helpers every subcommand module uses: one call declares a subcommand, and parsed
flags reach a library function (or options dataclass) by the parameter names they share."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from nectargan.cli.commands import add_command, call_with_flags
from nectargan.cli.main import build_parser


@dataclass
class _Options:
    size: int = 1
    label: str = "a"
    fast: bool = False


def _run(args: argparse.Namespace) -> int:
    return 7


def test_add_command_sets_help_description_and_handler():
    parser = argparse.ArgumentParser(prog="tool")
    sub = parser.add_subparsers(dest="command")
    cmd = add_command(sub, "go", _run, help="one line", description="the long story")
    cmd.add_argument("--size", type=int)

    args = parser.parse_args(["go", "--size", "3"])

    assert args.func(args) == 7 and args.size == 3
    assert cmd.description == "the long story"
    assert "one line" in parser.format_help()


def _documented(args: argparse.Namespace) -> int:
    """do the thing, briefly

    The longer story,
    over two lines.
    """
    return 0


def test_add_command_takes_help_and_description_from_the_handler_docstring():
    parser = argparse.ArgumentParser(prog="tool")
    sub = parser.add_subparsers(dest="command")
    cmd = add_command(sub, "thing", _documented)

    assert cmd.description == "The longer story, over two lines."
    assert "do the thing, briefly" in parser.format_help()
    assert add_command(sub, "bare", _run).description is None  # no docstring: no description


def test_call_with_flags_takes_parameters_by_name_and_given_wins():
    args = argparse.Namespace(size=4, label="b", unrelated=True)

    options = call_with_flags(_Options, args, label="given")

    assert options == _Options(size=4, label="given", fast=False)  # no --fast: its default


def test_call_with_flags_fills_keyword_only_but_never_positional_only_parameters():
    def target(first="default", /, second=0, *, third=0):
        return first, second, third

    args = argparse.Namespace(first="flag", second=2, third=3)

    assert call_with_flags(target, args) == ("default", 2, 3)


def test_every_command_parser_names_its_handler():
    """Each leaf subcommand reaches a handler: a block that forgot one would exit silently."""
    parser = build_parser()
    for argv in (
        ["infer", "--model", "m.onnx", "x.png", "-o", "out"],
        ["export", "--experiment", "run", "--format", "torchscript", "--static", "64", "32"],
        ["test", "--experiment", "run", "--out", "o", "--no-images"],
        ["replay", "run"],
        ["report", "run"],
        ["config", "schema"],
        ["data", "split", "src", "out"],
        ["visdom", "stop"],
        ["toolbox"],
    ):
        assert callable(parser.parse_args(argv).func), argv
    export = parser.parse_args(
        ["export", "--experiment", "r", "--opset", "17", "--static", "8", "4"]
    )
    assert (export.fmt, export.opset_version, export.static_hw) == ("onnx", 17, [8, 4])
    test = parser.parse_args(["test", "--experiment", "r", "--out", "o", "--no-images"])
    assert (test.out_dir, test.save_images) == ("o", False)
