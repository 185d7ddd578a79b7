"""The run status record the trainer keeps (runs/status.py), from real in-process runs.

Signals, ``kill -9`` and a full disk are tested with real processes in
test_signals.py, test_preemption.py and test_disk_full.py; here: an error,
Ctrl-C, and a loop of ``train_paired`` calls written by hand.
"""

from __future__ import annotations

import pytest
from _support import tiny_training_config

from nectargan.review import read_experiment
from nectargan.review.experiment_reader import status_line
from nectargan.runs import read_status
from nectargan.trainers import Pix2pixTrainer
from nectargan.trainers.run_record import end_state
from nectargan.trainers.signals import Interrupted
from nectargan.utils.diskfull import StorageStop


def _trainer(tmp_path, dataroot, **train):
    cfg = tiny_training_config(
        tmp_path / "out", dataroot, "rec", train={"epochs": 1, "epochs_decay": 1, **train}
    )
    return Pix2pixTrainer(cfg)


def _raise_at(exc: BaseException, epoch: int, idx: int):
    def observe(trainer, i):
        if (trainer.current_epoch, i) == (epoch, idx):
            raise exc

    return observe


def test_an_error_reads_crashed_with_its_one_line_reason(tmp_path, dataroot):
    trainer = _trainer(tmp_path, dataroot)
    trainer.step_observers.append(_raise_at(ValueError("bad batch\nmore detail"), 1, 2))
    with pytest.raises(ValueError):
        trainer.fit()
    trainer.close()
    status = read_status(trainer.experiment_dir)
    assert (status.state, status.exit_code, status.epochs_completed) == ("crashed", 1, 1)
    assert status.reason == "ValueError: bad batch"
    assert status_line(read_experiment(trainer.experiment_dir)) == (
        "stopped early (crashed: ValueError: bad batch): 1 of 2 epoch(s) completed"
    )


def test_ctrl_c_then_resume_reads_finished_over_two_sessions(tmp_path, dataroot):
    trainer = _trainer(tmp_path, dataroot)
    trainer.step_observers.append(_raise_at(KeyboardInterrupt(), 0, 3))
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    trainer.close()
    exp = trainer.experiment_dir
    status = read_status(exp)
    assert (status.state, status.exit_code, status.reason) == (
        "interrupted",
        130,
        "stopped by Ctrl-C",
    )
    resume = {"enable": True, "experiment_dir": str(exp)}
    again = _trainer(tmp_path, dataroot, resume=resume)
    again.fit()
    again.close()
    status = read_status(exp)
    assert (status.state, status.exit_code, status.epochs_completed) == ("finished", 0, 2)
    assert [(s.state, s.start_epoch) for s in status.sessions] == [
        ("interrupted", 0),
        ("finished", 0),
    ]
    assert not (exp / "checkpoints" / "interrupted.pt").exists()


def test_a_loop_of_train_paired_calls_keeps_the_record(tmp_path, dataroot):
    trainer = _trainer(tmp_path, dataroot)
    seen = []
    for epoch in range(trainer.total_epochs):
        trainer.train_paired(epoch)
        seen.append(read_status(trainer.experiment_dir).state)
    trainer.close()
    assert seen == ["running", "finished"]


def test_end_states_and_exit_codes():
    assert end_state(Interrupted(15)) == ("interrupted", 143, "stopped by SIGTERM")
    assert end_state(Interrupted(2)) == ("interrupted", 130, "stopped by Ctrl-C")
    assert end_state(KeyboardInterrupt()) == ("interrupted", 130, "stopped by Ctrl-C")
    assert end_state(StorageStop("3 saves failed")) == ("disk_full", 75, "3 saves failed")
    assert end_state(RuntimeError("")) == ("crashed", 1, "RuntimeError: RuntimeError")
