"""Messages that used to send the user the wrong way (issue 24, section 6)."""

from __future__ import annotations

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
