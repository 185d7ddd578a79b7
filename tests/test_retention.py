"""save.keep_last / save.keep_every: a long run keeps a bounded number of epoch checkpoints."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
from _support import deep_update, tiny_training_config

from nectargan.cli.main import main
from nectargan.config import Config, ConfigError
from nectargan.inference.checkpoints import resolve_checkpoint
from nectargan.runs import records as rm
from nectargan.trainers import Pix2pixTrainer, load_checkpoint
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.resume.choose import find_checkpoint
from nectargan.trainers.retention import epochs_to_delete

REMOVED = "removed old checkpoints"


def run(tmp_path, dataroot, epochs: int, decay: int, **save) -> Pix2pixTrainer:
    """A finished tiny run of ``epochs + decay`` epochs with the given ``save.*`` settings."""
    cfg = tiny_training_config(
        tmp_path / "out",
        dataroot,
        "keep",
        train={"epochs": epochs, "epochs_decay": decay},
        save={"example_save_rate": 0, **save},
    )
    trainer = Pix2pixTrainer(cfg)
    trainer.fit()
    trainer.close()
    return trainer


def resume(trainer: Pix2pixTrainer, decay: int, **sections) -> Pix2pixTrainer:
    """Continue ``trainer``'s experiment from its latest checkpoint up to ``decay`` more epochs."""
    cfg = trainer.config.to_dict()
    cfg["train"].update(
        epochs_decay=decay, resume={"enable": True, "experiment_dir": str(trainer.experiment_dir)}
    )
    deep_update(cfg, sections)
    again = Pix2pixTrainer(cfg)
    assert again.epochs_completed == trainer.epochs_completed
    again.fit()
    again.close()
    return again


def kept(exp) -> list[int]:
    return list(ckpt.list_epoch_checkpoints(exp))


def latest_file(exp) -> str:
    return json.loads((ckpt.checkpoint_dir(exp) / ckpt.LATEST).read_text())["file"]


def test_keep_last_and_keep_every_leave_the_newest_and_the_milestones(tmp_path, dataroot, capsys):
    trainer = run(tmp_path, dataroot, 3, 3, keep_last=2, keep_every=3)
    exp = trainer.experiment_dir
    assert kept(exp) == [3, 5, 6]
    assert latest_file(exp) == "epoch_0006.pt"
    err = capsys.readouterr().err
    # one line per save that deleted something (epochs 3, 4 and 6), none for epoch 5's
    lines = [line for line in err.splitlines() if REMOVED in line]
    assert [line.split(": ", 2)[-1] for line in lines] == [
        "epoch_0001.pt",
        "epoch_0002.pt",
        "epoch_0004.pt",
    ]
    assert "save.keep_last 2" in lines[0] and "warning" not in err

    # best.pt still loads and holds its epoch, even when that epoch's file is gone
    best = rm.read_val_best(exp)
    state = load_checkpoint(find_checkpoint(exp, "best"))
    assert state["epoch"] == best["epoch"]
    assert main(["test", "--experiment", str(exp), "--epoch", "best", "--no-images"]) == 0

    # a pruned epoch is named as pruned, with the epochs still there
    capsys.readouterr()
    assert main(["test", "--experiment", str(exp), "--epoch", "1", "--no-images"]) == 2
    message = capsys.readouterr().err
    assert "epoch 1" in message and "deleted by save.keep_last" in message
    assert "epochs with checkpoints: 3, 5, 6" in message
    with pytest.raises(ckpt.CheckpointError, match="deleted by save.keep_last"):
        resolve_checkpoint(exp, "4")  # infer --epoch / export --epoch
    with pytest.raises(ckpt.CheckpointError, match=r"epoch 2 .*deleted by save.keep_last"):
        cfg = trainer.config.to_dict()
        cfg["train"]["resume"] = {"enable": True, "experiment_dir": str(exp), "epoch": 2}
        Pix2pixTrainer(cfg)
    # an epoch that was never saved keeps the plain message
    with pytest.raises(ckpt.CheckpointError, match=r"no checkpoint for epoch 9 .*3, 5, 6"):
        find_checkpoint(exp, 9)

    # the newest is what a resume needs: it continues from there, and keeps pruning
    again = resume(trainer, 4)
    assert again.epochs_completed == 7
    assert kept(exp) == [3, 6, 7] and latest_file(exp) == "epoch_0007.pt"


def test_keep_last_0_keeps_all_then_a_resume_prunes_and_a_copied_best_survives(
    tmp_path, dataroot, capsys
):
    trainer = run(tmp_path, dataroot, 1, 2, keep_last=0)
    exp = trainer.experiment_dir
    assert kept(exp) == [1, 2, 3]
    assert REMOVED not in capsys.readouterr().err
    # best.pt as a copy (what write_best makes where hard links are refused)
    best_pt = ckpt.checkpoint_dir(exp) / ckpt.BEST
    best_epoch = load_checkpoint(best_pt)["epoch"]
    shutil.copyfile(best_pt, best_pt.with_name("copy.tmp"))
    os.replace(best_pt.with_name("copy.tmp"), best_pt)
    # an epoch "file" that cannot be deleted: a warning, and training goes on
    stuck = ckpt.epoch_path(exp, 1)
    stuck.unlink()
    stuck.mkdir()

    again = resume(
        trainer, 4, save={"keep_last": 1}, visualizer={"visdom": {"enable": False, "val_every": 0}}
    )
    assert again.epochs_completed == 5
    assert kept(exp) == [1, 5] and stuck.is_dir()  # the newest, and the one that stayed
    err = capsys.readouterr().err
    assert re.search(r"warning: could not delete .*epoch_0001\.pt: .*; it stays", err)
    assert load_checkpoint(find_checkpoint(exp, "best"))["epoch"] == best_epoch


@pytest.mark.parametrize("key", ["save.keep_last", "save.keep_every"])
@pytest.mark.parametrize("value", [-1, 1.5, "x"])
def test_bad_retention_values_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=re.escape(f"{key}: expected")):
        Config.load(None).with_overrides({key: value})


def test_the_rules_never_delete_the_newest_latest_or_later_epochs():
    assert epochs_to_delete([1, 2, 3], 3, 0, 0, []) == []  # 0: keep all
    assert epochs_to_delete([1, 2, 3], 3, 1, 0, []) == [1, 2]
    assert epochs_to_delete([3], 3, 1, 0, []) == []  # the only one stays
    assert epochs_to_delete(range(1, 11), 10, 2, 4, []) == [1, 2, 3, 5, 6, 7]
    assert epochs_to_delete([1, 2, 3], 3, 1, 0, [2]) == [1]  # latest.json's file stays
    # a resume from epoch 2 of a longer run: epochs after the new one are not counted
    assert epochs_to_delete([1, 2, 3, 5, 6], 3, 2, 0, []) == [1]
