"""Resume from the command line: the checkpoint's own config, what may change, one history.

The interruption here is a ``KeyboardInterrupt`` raised by a step observer at a
chosen step (deterministic); real signals are covered in ``test_signals.py``.
"""

from __future__ import annotations

import json
import shutil

import pytest
from _support import tiny_training_config, write_config

import nectargan.trainers as trainers
from nectargan.cli.main import main
from nectargan.losses import read_loss_log
from nectargan.trainers import load_checkpoint
from nectargan.trainers.timing import read_timing

BATCHES = 8  # 32 training pairs, batch 4


def _config(tmp_path, dataroot, epochs):
    cfg = tiny_training_config(
        tmp_path / "out", dataroot, "res", train={"epochs": epochs, "epochs_decay": 0}
    )
    return write_config(tmp_path, cfg)


@pytest.fixture
def stop_at_step(monkeypatch):
    """``stop_at_step(n)``: the next CLI run gets Ctrl-C once ``global_step`` reaches n."""

    original = trainers.Pix2pixTrainer

    def arm(step: int) -> None:
        class Stopping(original):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)

                def observe(t, idx):
                    if t.global_step == step:
                        raise KeyboardInterrupt

                self.step_observers.append(observe)

        monkeypatch.setattr(trainers, "Pix2pixTrainer", Stopping)

    return arm


def assert_one_history(exp, epochs: int) -> None:
    """Every loss: epochs non-decreasing, steps 0..n-1, exactly one record per step."""
    log = read_loss_log(exp)
    for name, cols in log["losses"].items():
        assert cols["epoch"] == sorted(cols["epoch"]), name
        assert cols["step"] == list(range(epochs * BATCHES)), name
        assert max(cols["epoch"]) < epochs
    assert [e["epoch"] for e in read_timing(exp)] == list(range(1, epochs + 1))


@pytest.fixture(scope="module")
def three_epochs(tmp_path_factory, dataroot):
    """A finished 3-epoch run; tests copy it before changing it."""
    tmp = tmp_path_factory.mktemp("three")
    assert main(["train", "--config", str(_config(tmp, dataroot, 3))]) == 0
    return tmp / "out" / "res_v1"


@pytest.fixture
def run3(three_epochs, tmp_path):
    copy = tmp_path / "res_v1"
    shutil.copytree(three_epochs, copy)
    (copy / ".nectargan.lock").unlink(missing_ok=True)
    return copy


def test_extend_interrupt_then_follow_the_hint(tmp_path, dataroot, stop_at_step, capsys):
    assert main(["train", "--config", str(_config(tmp_path, dataroot, 1))]) == 0
    exp = tmp_path / "out" / "res_v1"
    stop_at_step(BATCHES + 3)  # inside epoch 2
    assert main(["train", "--resume", str(exp), "--epochs", "6"]) == 130
    err = capsys.readouterr().err
    assert "resume: changing train.epochs 1 -> 6" in err
    assert f"resume with: nectargan train --resume {exp}" in err
    assert json.loads((exp / "config.resume1.json").read_text())["train"]["epochs"] == 6

    # the hint, as printed: no flags; continues to the 6 epochs that run was asked for
    stop_at_step(-1)
    assert main(["train", "--resume", str(exp)]) == 0
    out, err = capsys.readouterr()
    # interrupted.pt knows where inside epoch 2 it stopped: the resume goes on from there
    assert "resuming epoch 2 after batch 3" in out and "done: 6 epochs" in out
    assert "progress total" not in err
    assert load_checkpoint(exp / "checkpoints" / "epoch_0006.pt")["global_step"] == 6 * BATCHES
    assert json.loads((exp / "config.resume2.json").read_text())["train"]["epochs"] == 6
    assert not (exp / "config.resume3.json").exists()
    # the 3 steps of epoch 2 done before the stop are kept, not trained (nor logged) again
    assert "dropped" not in err
    assert_one_history(exp, 6)


def test_refused_resumes_write_no_config_file(run3, capsys):
    assert main(["train", "--resume", str(run3), "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "has already completed 3 epoch(s)" in err and "--epochs 4" in err
    assert main(["train", "--resume", str(run3), "--epochs", "3"]) == 2  # nothing to do
    assert main(["train", "--resume", str(run3), "--set", "train.generator.n_downs=4"]) == 2
    err = capsys.readouterr().err
    assert "cannot change train.generator.n_downs" in err and "Traceback" not in err
    assert not list(run3.glob("config.resume*.json"))


def test_resume_with_a_config_applies_only_resumable_keys(run3, tmp_path, dataroot, capsys):
    other = tiny_training_config(
        tmp_path / "elsewhere",
        tmp_path / "other_data",
        "other",
        train={"epochs": 4, "epochs_decay": 0},
    )
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    assert main(["train", "--resume", str(run3), "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cannot change common.experiment_name, common.output_directory" in err
    assert "dataloader.dataroot" in err and "would change the networks or the data" in err

    same = tiny_training_config(
        "ignored", None, "ignored", train={"epochs": 4, "epochs_decay": 0}, save={"num_examples": 1}
    )
    del same["common"]  # what the run already has
    path.write_text(json.dumps(same))
    assert main(["train", "--resume", str(run3), "--config", str(path)]) == 0
    err = capsys.readouterr().err
    assert "resume: changing save.num_examples 2 -> 1" in err
    assert "resume: changing train.epochs 3 -> 4" in err
    assert main(["train", "--resume", str(run3), "--batch-size", "2", "--epochs", "9"]) == 2
    assert "cannot change dataloader.batch_size" in capsys.readouterr().err


def test_resume_from_an_earlier_epoch_cuts_the_history_back(run3, capsys):
    assert main(["train", "--resume", str(run3), "--resume-epoch", "1"]) == 0
    err = capsys.readouterr().err
    assert "record(s) from epoch 2 on" in err
    assert_one_history(run3, 3)
    index = json.loads((run3 / "loss_log.json").read_text())
    assert index["rewinds"] == [{"epoch": 1, "dropped": 2 * BATCHES * len(index["losses"])}]


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated"),
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_bytes(b"\x89garbage" * 100), "not a checkpoint"),
    ],
    ids=["truncated", "empty", "garbage"],
)
def test_broken_checkpoint_names_the_newest_readable_one(run3, capsys, damage, why):
    damage(run3 / "checkpoints" / "epoch_0003.pt")
    assert main(["train", "--resume", str(run3), "--epochs", "4"]) == 2
    err = capsys.readouterr().err
    assert "cannot read checkpoint" in err and "epoch_0003.pt" in err and why in err
    hint = f"nectargan train --resume {run3} --resume-epoch 2"
    assert "newest readable checkpoint is epoch_0002.pt (epoch 2)" in err and hint in err
    assert "weights_only" not in err and "Traceback" not in err
    # the suggested command works
    assert main(["train", "--resume", str(run3), "--resume-epoch", "2", "--epochs", "4"]) == 0
    assert load_checkpoint(run3 / "checkpoints" / "epoch_0004.pt")["epoch"] == 4
