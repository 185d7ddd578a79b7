"""The command line's one error handler: user errors are one line and exit 2, bugs are not."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from nectargan.cli import main as cli_main
from nectargan.config import ConfigError
from nectargan.errors import (
    CheckpointUserError,
    ConfigUserError,
    DataUserError,
    ExperimentUserError,
    MissingDataError,
    ServerUserError,
    UserError,
    UserFileError,
    user_files,
)


def _command_raising(monkeypatch, exc: BaseException) -> None:
    """Make ``nectargan data synth`` raise ``exc`` from inside the command."""

    def boom(args: argparse.Namespace) -> int:
        raise exc

    real_build = cli_main.build_parser

    def build() -> argparse.ArgumentParser:
        parser = real_build()
        for action in parser._subparsers._group_actions:  # the one sub-command group
            data = action.choices["data"]
            for sub in data._subparsers._group_actions:
                sub.choices["synth"].set_defaults(func=boom)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build)


def test_a_bare_value_error_is_a_bug_traceback_and_exit_1(monkeypatch, tmp_path, capsys) -> None:
    _command_raising(monkeypatch, ValueError("shape mismatch deep inside torch"))
    assert cli_main.main(["data", "synth", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "ValueError: shape mismatch deep inside torch" in err
    assert "this is a bug in NectarGAN" in err and "please report it to" in err


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyError("G_L1")])
def test_other_exceptions_are_bugs_too(monkeypatch, tmp_path, capsys, exc) -> None:
    _command_raising(monkeypatch, exc)
    assert cli_main.main(["data", "synth", str(tmp_path / "d")]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_a_config_error_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys) -> None:
    _command_raising(monkeypatch, ConfigError(["train.epochs: expected >= 0, got -1"]))
    assert cli_main.main(["data", "synth", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nectargan data synth: error: invalid config (1 problem(s)):")
    assert "train.epochs: expected >= 0, got -1" in err and "Traceback" not in err


def test_ctrl_c_is_130(monkeypatch, tmp_path, capsys) -> None:
    _command_raising(monkeypatch, KeyboardInterrupt())
    assert cli_main.main(["data", "synth", str(tmp_path / "d")]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_real_config_error_through_train(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": {"epochs": -1}}')
    assert cli_main.main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nectargan train: error:") and "train.epochs" in err
    assert "Traceback" not in err


def test_an_unwritable_output_is_a_user_error(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cli_main.main(["data", "synth", str(blocker / "out"), "--n", "4"]) == 2
    err = capsys.readouterr().err
    assert "nectargan data synth: error:" in err and str(blocker) in err
    assert "Traceback" not in err


def test_every_named_error_is_a_user_error_and_keeps_its_base() -> None:
    from nectargan.dataset.io import ImageReadError
    from nectargan.review.experiment_reader import ExperimentError
    from nectargan.review.report import ReportError
    from nectargan.trainers.checkpoint import CheckpointError
    from nectargan.visualizer.visdom.assets import AssetInstallError
    from nectargan.visualizer.visdom.server import ServerError

    family = {
        ConfigError: (ConfigUserError, ValueError),
        CheckpointError: (CheckpointUserError, ValueError),
        ExperimentError: (ExperimentUserError, ValueError),
        ReportError: (ExperimentUserError, ValueError),
        ServerError: (ServerUserError, RuntimeError),
        AssetInstallError: (ServerUserError, RuntimeError),
        ImageReadError: (DataUserError, OSError),
        MissingDataError: (DataUserError, FileNotFoundError),
    }
    for cls, bases in family.items():
        assert issubclass(cls, UserError) and all(issubclass(cls, b) for b in bases), cls


def test_user_files_wraps_only_errors_that_name_a_file(tmp_path: Path) -> None:
    expected = pytest.raises(UserFileError, match="reading: No such file or directory")
    with expected as info, user_files("reading"):
        (tmp_path / "missing.png").read_bytes()
    assert isinstance(info.value, OSError) and "missing.png" in str(info.value)
    with pytest.raises(OSError) as plain, user_files("reading"):
        raise OSError("no file named")
    assert not isinstance(plain.value, UserError)
