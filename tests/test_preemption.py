"""Cluster preemption: ``--auto-resume`` and mid-epoch checkpoints, with real processes.

A requeued job runs the same command again; these tests do exactly that:
stop a real ``python -m nectargan train`` with a real signal (SIGTERM, or
SIGKILL after a time-based checkpoint), run the same command again and
check it continued in the same directory, mid-epoch, with one history.
The SIGTERM test also compares with an uninterrupted run: on CPU, fp32,
no loader workers, the final weights are bit-identical.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from _support import tiny_training_config, write_config

from nectargan.cli.main import main
from nectargan.losses import read_loss_log
from nectargan.review import read_experiment
from nectargan.review.compare import summarize
from nectargan.review.experiment_reader import status_line
from nectargan.runs import read_status
from nectargan.trainers import load_checkpoint

BATCHES = 8  # 32 training pairs, batch 4
CMD = [sys.executable, "-m", "nectargan", "train"]


def _config(directory, dataroot, epochs: int, **save):
    """A deterministic tiny run: CPU, fp32, no loader workers, no validation or examples."""
    cfg = tiny_training_config(
        directory / "out",
        dataroot,
        "job",
        common={"device": "cpu"},
        dataloader={"num_workers": 0},
        train={"epochs": epochs, "epochs_decay": 1, "mixed_precision": "off"},
        save={"example_save_rate": 0, **save},
        visualizer={"visdom": {"val_every": 0}},
    )
    directory.mkdir(parents=True, exist_ok=True)
    return write_config(directory, cfg)


def _run(args, timeout=300):
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=timeout)


def _one_history(exp, steps: int) -> dict:
    """Every loss logged once per step, 0..steps-1, epochs non-decreasing."""
    log = read_loss_log(exp)
    for name, cols in log["losses"].items():
        assert cols["step"] == list(range(steps)), name
        assert cols["epoch"] == sorted(cols["epoch"]), name
    return log


STOPPER = textwrap.dedent(
    """
    import os, signal, sys
    import nectargan.trainers as trainers
    from nectargan.cli.main import main

    AT_STEP = int(sys.argv[2])


    class SigtermInsideAStep(trainers.Pix2pixTrainer):
        def train_step(self, x, y, idx, **kw):
            if self.global_step + 1 == AT_STEP:  # arrives mid-step, like a real preemption
                os.kill(os.getpid(), signal.SIGTERM)
            super().train_step(x, y, idx, **kw)


    trainers.Pix2pixTrainer = SigtermInsideAStep
    sys.exit(main(["train", "--config", sys.argv[1], "--auto-resume"]))
    """
)


def test_sigterm_mid_epoch_then_the_same_command_finishes_in_v1_bit_identical(tmp_path, dataroot):
    epochs = 3  # 2 + 1 decay
    base = _config(tmp_path / "base", dataroot, 2)
    job = _config(tmp_path / "job", dataroot, 2)
    assert _run(["--config", str(base)]).returncode == 0

    script = tmp_path / "stopper.py"
    script.write_text(STOPPER)
    stop = BATCHES + 4  # the 4th step of epoch 2
    first = subprocess.run(
        [sys.executable, str(script), str(job), str(stop)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    exp = tmp_path / "job" / "out" / "job_v1"
    assert first.returncode == 143, first.stderr
    assert "starting" in first.stderr and str(exp) in first.stderr
    position = load_checkpoint(exp / "checkpoints" / "interrupted.pt")["position"]
    assert position["epoch"] == 1 and position["batches_done"] == 4 and position["exact"]
    stopped = read_status(exp)
    assert (stopped.state, stopped.exit_code, stopped.epochs_completed) == ("interrupted", 143, 1)
    assert stopped.reason == "stopped by SIGTERM" and len(stopped.sessions) == 1

    again = _run(["--config", str(job), "--auto-resume"])  # the requeue: same command
    assert again.returncode == 0, again.stderr
    assert f"continuing {exp} from checkpoints/interrupted.pt (epoch 2 after batch 4)" in (
        again.stderr
    )
    assert "resuming epoch 2 after batch 4" in again.stdout
    assert not (tmp_path / "job" / "out" / "job_v2").exists()
    final = load_checkpoint(exp / "checkpoints" / f"epoch_{epochs:04d}.pt")
    assert final["global_step"] == epochs * BATCHES  # no step repeated, none skipped
    log = _one_history(exp, epochs * BATCHES)
    # the record says finished, over 2 sessions; the superseded interrupted.pt is gone
    status = read_status(exp)
    assert (status.state, status.exit_code, status.epochs_completed) == ("finished", 0, epochs)
    sessions = [(s.state, s.exit_code, s.start_epoch) for s in status.sessions]
    assert sessions == [("interrupted", 143, 0), ("finished", 0, 1)]
    assert not (exp / "checkpoints" / "interrupted.pt").exists()
    assert "removed interrupted.pt: the checkpoint just written is past it" in again.stderr
    review = read_experiment(exp)
    assert status_line(review) == f"completed: {epochs} of {epochs} epoch(s), 2 sessions"
    assert summarize([review], ["job"])[0].epochs_text == f"{epochs} of {epochs}"  # not "(stopped)"

    # the gold standard: the same weights, optimizer states and losses as never stopping
    ref = load_checkpoint(tmp_path / "base" / "out" / "job_v1" / "checkpoints" / "epoch_0003.pt")
    for net in ("G", "D"):
        for name, value in ref["networks"][net]["model"].items():
            assert torch.equal(value, final["networks"][net]["model"][name]), (net, name)
        ref_opt, opt = ref["networks"][net]["optimizer"], final["networks"][net]["optimizer"]
        for key, slots in ref_opt["state"].items():
            for slot, value in slots.items():
                assert torch.equal(value, opt["state"][key][slot]), (net, key, slot)
    ref_log = read_loss_log(tmp_path / "base" / "out" / "job_v1")
    for name, cols in ref_log["losses"].items():
        assert log["losses"][name]["raw"] == cols["raw"], name


KILLER = textwrap.dedent(
    """
    import os, signal, sys, time
    import nectargan.trainers as trainers
    from nectargan.cli.main import main


    class LostNodeAfterATimedCheckpoint(trainers.Pix2pixTrainer):
        def train_step(self, x, y, idx, **kw):
            time.sleep(0.05)  # 32 steps outlast the 0.6 s timer however fast the machine
            super().train_step(x, y, idx, **kw)

        def save_timed_checkpoint(self):
            path = super().save_timed_checkpoint()
            if path is not None and self.progress.mid_epoch:
                os.kill(os.getpid(), signal.SIGKILL)  # the node is gone: nothing runs after
            return path


    trainers.Pix2pixTrainer = LostNodeAfterATimedCheckpoint
    sys.exit(main(["train", "--config", sys.argv[1], "--auto-resume"]))
    """
)


def test_kill_9_after_a_timed_checkpoint_resumes_mid_epoch(tmp_path, dataroot):
    epochs = 4  # 3 + 1 decay; only the last epoch writes an epoch checkpoint
    cfg = _config(tmp_path, dataroot, 3, every_minutes=0.01, model_save_rate=0)  # 0.6 s
    exp = tmp_path / "out" / "job_v1"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    first = subprocess.run(
        [sys.executable, str(script), str(cfg)], capture_output=True, text=True, timeout=300
    )
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert not (exp / "checkpoints" / "interrupted.pt").exists()
    position = load_checkpoint(exp / "checkpoints" / "mid_epoch.pt")["position"]
    assert 0 < position["batches_done"] < BATCHES
    killed = read_status(exp)  # the record still says running; the freed lock says crashed
    assert killed.state == "crashed" and killed.exit_code is None
    assert killed.pid != os.getpid()  # the killed child's pid, named in the reason
    assert f"process {killed.pid} ended without recording why" in killed.reason

    again = _run(["--config", str(cfg), "--auto-resume"])  # the requeue: same command
    assert again.returncode == 0, again.stderr
    assert f"continuing {exp} from checkpoints/mid_epoch.pt" in again.stderr
    assert not (tmp_path / "out" / "job_v2").exists()
    final = load_checkpoint(exp / "checkpoints" / f"epoch_{epochs:04d}.pt")
    assert final["global_step"] == epochs * BATCHES
    _one_history(exp, epochs * BATCHES)
    status = read_status(exp)
    assert status.state == "finished"
    assert [s.state for s in status.sessions] == ["crashed", "finished"]
    assert not (exp / "checkpoints" / "mid_epoch.pt").exists()  # stale once epoch 4 saved


def test_a_due_timed_checkpoint_waits_past_the_epochs_last_batch(tmp_path, dataroot):
    """The epoch's end follows its last batch at once, so a mid_epoch.pt there would be a
    copy of it: the due timer fires after the next epoch's first step instead."""
    from nectargan.trainers import Pix2pixTrainer

    saved_at: list[tuple[int, int]] = []

    class Recording(Pix2pixTrainer):
        def save_timed_checkpoint(self):
            saved_at.append((self.progress.current_epoch, self.progress.batches_done))
            return super().save_timed_checkpoint()

    cfg = _config(tmp_path, dataroot, 1, every_minutes=1e-9, model_save_rate=0)  # always due
    trainer = Recording(str(cfg))
    trainer.fit()
    trainer.close()
    assert saved_at == [(epoch, n) for epoch in (0, 1) for n in range(1, BATCHES)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, dataroot):
    """A finished ``--auto-resume`` run (2 epochs) and its config; tests copy it."""
    tmp = tmp_path_factory.mktemp("finished")
    cfg = _config(tmp, dataroot, 1)
    assert main(["train", "--config", str(cfg), "--auto-resume"]) == 0
    return tmp


@pytest.fixture
def run_copy(finished, tmp_path):
    shutil.copytree(finished, tmp_path / "copy")
    cfg = tmp_path / "copy" / "config.json"
    data = json.loads(cfg.read_text())
    data["common"]["output_directory"] = str(tmp_path / "copy" / "out")
    cfg.write_text(json.dumps(data))
    return cfg, tmp_path / "copy" / "out"


def _snapshot(folder) -> dict:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def test_finished_run_and_the_same_command_is_complete_and_writes_nothing(run_copy, capsys):
    cfg, out = run_copy
    capsys.readouterr()
    before = _snapshot(out)
    assert main(["train", "--config", str(cfg), "--auto-resume"]) == 0
    stdout = capsys.readouterr().out
    assert f"auto-resume: {out / 'job_v1'} is already complete (2 of 2 epoch(s) done)" in stdout
    assert _snapshot(out) == before  # no new version, no config.resumeN.json, nothing touched


def test_more_epochs_continue_a_finished_run_and_another_setup_starts_a_new_one(run_copy, capsys):
    cfg, out = run_copy
    assert main(["train", "--config", str(cfg), "--auto-resume", "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "from checkpoints/epoch_0002.pt (after epoch 2)" in err
    assert load_checkpoint(out / "job_v1" / "checkpoints" / "epoch_0003.pt")["epoch"] == 3

    lr = ["--set", "train.lr_initial=0.001", "--epochs", "0"]  # another run: its own version
    assert main(["train", "--config", str(cfg), "--auto-resume", *lr]) == 0
    err = capsys.readouterr().err
    assert f"skipping {out / 'job_v1'}: a different run setup, train.lr_initial" in err
    assert f"starting {out / 'job_v2'}" in err
    assert main(["train", "--config", str(cfg), "--auto-resume", *lr]) == 0
    assert "job_v2 is already complete" in capsys.readouterr().out


def test_a_second_job_for_a_busy_run_is_refused(run_copy, capsys):
    cfg, out = run_copy
    fd = os.open(out / "job_v1" / ".nectargan.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another job holds the run
        os.pwrite(fd, b"4242\n", 0)
        assert main(["train", "--config", str(cfg), "--auto-resume", "--epochs", "5"]) == 2
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert "is in use by another training run (pid 4242)" in err
    assert not (out / "job_v2").exists()


@pytest.mark.parametrize(
    ("value", "why"),
    [("-1", "expected >= 0, got -1"), ("NaN", "expected a finite number"), ('"often"', "number")],
)
def test_bad_every_minutes_is_refused_naming_the_key(tmp_path, dataroot, capsys, value, why):
    cfg = _config(tmp_path, dataroot, 1)
    args = ["train", "--config", str(cfg), "--set", f"save.every_minutes={value}"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "save.every_minutes" in err and why in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_auto_resume_with_resume_is_refused(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--auto-resume"]) == 2
    assert "--auto-resume: cannot be combined with --resume" in capsys.readouterr().err


def test_resumable_sampler_starts_part_way_once_in_the_same_order():
    from torch.utils.data import RandomSampler

    from nectargan.trainers.data import ResumableSampler

    generator = torch.Generator().manual_seed(3)
    sampler = ResumableSampler(RandomSampler(range(10), generator=generator))
    start = generator.get_state()
    full = list(sampler)
    generator.set_state(start)
    sampler.skip_next(4)
    assert list(sampler) == full[4:]  # the rest of the same epoch
    generator.set_state(start)
    assert list(sampler) == full and len(sampler) == 10  # the skip applied once
