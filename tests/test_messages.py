"""Messages that used to send the user the wrong way (issue 24, section 6)."""

from __future__ import annotations

import json
import shlex
import shutil

from _support import tiny_training_config, write_config

from nectargan.cli.main import main
from nectargan.trainers import Pix2pixTrainer


def test_batch_larger_than_the_dataset_is_clamped_and_said(tmp_path, dataroot, capsys):
    """Before: accepted silently, and the loader's figures were computed from 100,000."""
    cfg = tiny_training_config(
        tmp_path, dataroot, "huge_batch", dataloader={"batch_size": 100_000, "num_workers": -1}
    )
    trainer = Pix2pixTrainer(cfg)
    try:
        n_pairs = len(trainer.train_loader.dataset)
        err = capsys.readouterr().err
        assert (
            f"note: batch size 100000 is more than the {n_pairs} training pairs in "
            f"{dataroot / 'train'}; using {n_pairs}, one batch per epoch"
        ) in err
        assert trainer.train_loader.batch_size == n_pairs
        assert trainer.train_loader.batch_size * len(trainer.train_loader) == n_pairs
        # The auto-sized loader's own figure, behind its "loading a batch ... ms" message.
        assert vars(trainer.train_loader)["batch_size"] == n_pairs
    finally:
        trainer.close()


def test_crop_size_refusal_names_the_n_downs_that_fits(capsys):
    """Before: only "expected a multiple of 2**n_downs = 256", not what to change it to."""
    assert main(["config", "show", "--set", "dataloader.crop_size=128"]) == 2
    err = capsys.readouterr().err
    assert "got 128 (train.generator.n_downs 7 fits crop_size 128; or crop_size 256)" in err


def test_empty_test_split_sends_the_user_to_val(tmp_path, dataroot, capsys):
    """Before: "evaluate with: nectargan test ..." led to "no image files in .../test"."""
    data = tmp_path / "data"
    for split in ("train", "val"):
        shutil.copytree(dataroot / split, data / split)
    (data / "test").mkdir()
    config = write_config(tmp_path, tiny_training_config(tmp_path / "out", data, "no_test"))
    assert main(["train", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("evaluate with: "))
    command = shlex.split(line.removeprefix("evaluate with: "))
    assert command[:2] == ["nectargan", "test"] and command[-2:] == ["--split", "val"]
    assert main(command[1:]) == 0
    experiment = command[command.index("--experiment") + 1]
    assert main(["test", "--experiment", experiment]) == 2
    err = capsys.readouterr().err
    assert (
        f"no image files in '{data / 'test'}'; this dataset has a val split: pass --split val"
        in err
    )


def _shown_config(capsys, *args: str) -> tuple[dict, str]:
    assert main(["config", "show", *args]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_a_packaged_config_on_other_data_is_named_after_that_data(tmp_path, dataroot, capsys):
    """Before: --config demo --dataroot real/ made demo_vN in the demo's env nectargan_demo."""
    real = tmp_path / "street photos"
    real.mkdir()
    config, err = _shown_config(capsys, "--config", "demo", "--set", f"dataloader.dataroot={real}")
    assert config["common"]["experiment_name"] == "street_photos"
    assert config["visualizer"]["visdom"]["env_name"] == "nectargan_street_photos"
    assert "note: run named after its data: experiment street_photos" in err
    # A name the user gives wins; the env follows it unless given too.
    named = [f"dataloader.dataroot={real}", "common.experiment_name=mine"]
    config, _ = _shown_config(capsys, "--config", "demo", "--set", named[0], "--set", named[1])
    assert config["common"]["experiment_name"] == "mine"
    assert config["visualizer"]["visdom"]["env_name"] == "nectargan_mine"
    # The demo on its own data, and the user's own config file, keep their names.
    config, err = _shown_config(capsys, "--config", "demo")
    assert config["common"]["experiment_name"] == "demo" and "note" not in err
    own = write_config(tmp_path, {"common": {"experiment_name": "facades"}})
    config, err = _shown_config(capsys, "--config", str(own), "--set", named[0])
    assert config["common"]["experiment_name"] == "facades" and "note" not in err


def test_train_with_the_demo_config_on_real_data_stays_out_of_the_demo(tmp_path, dataroot, capsys):
    args = ["train", "--config", "demo", "--dataroot", str(dataroot), "--output", str(tmp_path)]
    small = ["--set", "train.generator.n_downs=5", "--set", "dataloader.crop_size=32"]
    short = ["--epochs", "1", "--epochs-decay", "0", "--no-visdom", *small]
    assert main([*args, *short, "--set", "dataloader.load_size=32"]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith("_v1")] == [f"{dataroot.name}_v1"]


def test_a_non_ascii_name_is_refused_saying_ascii(capsys):
    """Before: "expected letters, digits", which ü and ï are."""
    assert main(["config", "show", "--set", "common.experiment_name=ünï"]) == 2
    err = capsys.readouterr().err
    assert "expected ASCII letters, digits" in err and "'ünï'" in err
