"""Upstream NectarGAN's console scripts run our train and test commands, upstream configs too.

``nectargan-train-paired -f CONFIG -lss SUBSPEC [-log]`` and
``nectargan-test-paired -e DIR [-f CONFIG] [-d DATAROOT] [-l EPOCH] [-i N]``,
called through the functions pyproject's [project.scripts] points at.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from _support import tiny_upstream_config as upstream_config

from nectargan.cli import upstream_scripts
from nectargan.losses import read_loss_log

ROOT = Path(__file__).resolve().parents[1]


def write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_pyproject_names_both_scripts():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["nectargan-train-paired"] == "nectargan.cli.upstream_scripts:train_paired_main"
    assert scripts["nectargan-test-paired"] == "nectargan.cli.upstream_scripts:test_paired_main"


def test_train_then_test_with_an_upstream_config(tmp_path, dataroot, capsys):
    config = write(
        tmp_path / "train1_config.json", upstream_config(tmp_path / "out", dataroot, "up")
    )
    code = upstream_scripts.train_paired_main(["-f", str(config), "-lss", "extended", "-log"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "nectargan-train-paired: notice: " in err and "upstream NectarGAN config" in err
    exp = tmp_path / "out" / "up_v1"
    assert (exp / "checkpoints" / "epoch_0001.pt").is_file()
    saved = json.loads((exp / "config.json").read_text())
    assert saved["train"]["loss"]["subspec"] == "extended"
    assert saved["train"]["generator"]["n_downs"] == 5
    assert "G_SOBEL" in read_loss_log(exp)["losses"]  # -log: the loss log is written

    code = upstream_scripts.test_paired_main(
        ["-e", str(exp), "-f", str(config), "-l", "1"] + ["-i", "2"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    metrics = json.loads((exp / "test" / "epoch_0001" / "metrics.json").read_text())
    assert metrics["n_images"] == 2
    assert "test split, 2 images, after epoch 1" in out


def test_without_log_no_loss_log_as_upstream(tmp_path, dataroot, capsys):
    config = write(tmp_path / "c.json", upstream_config(tmp_path / "out", dataroot, "nolog"))
    assert upstream_scripts.train_paired_main(["-f", str(config)]) == 0, capsys.readouterr().err
    exp = tmp_path / "out" / "nolog_v1"
    assert (exp / "checkpoints" / "epoch_0001.pt").is_file()
    assert not (exp / "loss_log.json").exists()
    assert json.loads((exp / "config.json").read_text())["train"]["loss"]["subspec"] == "basic"


def test_bad_input_is_one_line_naming_the_script(tmp_path, dataroot, capsys):
    bad = upstream_config(tmp_path / "out", dataroot, "bad")
    bad["config"]["dataloader"]["batch_size"] = "four"
    config = write(tmp_path / "bad.json", bad)
    assert upstream_scripts.train_paired_main(["-f", str(config)]) == 2
    err = capsys.readouterr().err
    assert "nectargan-train-paired: error: " in err and "batch_size" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()

    assert upstream_scripts.test_paired_main(["-e", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nectargan-test-paired: error: ") and str(tmp_path / "missing") in err

    with pytest.raises(SystemExit) as info:  # argparse: usage and exit 2
        upstream_scripts.train_paired_main(["-lss", "fancy"])
    assert info.value.code == 2 and "invalid choice: 'fancy'" in capsys.readouterr().err
