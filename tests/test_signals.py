"""SIGTERM stops like Ctrl-C (exit 143); repeated signals never tear a checkpoint write.

Real processes and real signals only. To hit the checkpoint write itself
without racing the clock, the probe trainer below puts an object into the
checkpoint whose pickling sends the signals (``os.kill`` to itself): they
arrive while ``torch.save`` is writing, every time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest
from _support import tiny_training_config, wait_for, write_config

from nectargan.losses import read_loss_log
from nectargan.runs import read_status
from nectargan.trainers import load_checkpoint


def _config(tmp_path, dataroot, **train):
    cfg = tiny_training_config(
        tmp_path / "out", dataroot, "sig", train={"epochs": 500, "epochs_decay": 0, **train}
    )
    return write_config(tmp_path, cfg)


def test_sigterm_saves_like_ctrl_c_and_exits_143(tmp_path, dataroot):
    cfg_path = _config(tmp_path, dataroot)
    exp = tmp_path / "out" / "sig_v1"
    with open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nectargan", "train", "--config", str(cfg_path)],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            wait_for(
                lambda: (exp / "checkpoints" / "epoch_0001.pt").exists() or proc.poll() is not None,
                120,
                what="first epoch checkpoint",
            )
            assert proc.poll() is None, (tmp_path / "stderr").read_text()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr = (tmp_path / "stderr").read_text()
    assert code == 143, stderr
    assert "stopped (SIGTERM)" in stderr and "Traceback" not in stderr
    assert f"resume with: nectargan train --resume {exp}" in stderr
    state = load_checkpoint(exp / "checkpoints" / "interrupted.pt")
    assert state["interrupted"] and state["epoch"] >= 1
    status = read_status(exp)  # the run's own record says how it ended
    assert (status.state, status.exit_code, status.reason) == (
        "interrupted",
        143,
        "stopped by SIGTERM",
    )
    assert status.epochs_completed == state["epoch"] and status.sessions[0].pid == proc.pid
    log = read_loss_log(exp)
    for cols in log["losses"].values():
        assert len(cols["step"]) >= state["epoch"] * 8  # 32 pairs / batch 4, all flushed


PROBE = textwrap.dedent(
    """
    import collections, os, signal, sys
    import nectargan.trainers as trainers
    from nectargan.cli.main import main

    FIRST_AT_STEP = int(sys.argv[2])   # -1: no signal during the epoch
    DURING_WRITE = int(sys.argv[3])    # signals sent while the checkpoint is being written
    INTERRUPTED_ONLY = sys.argv[4] == "1"


    class SignalsWhilePickled:
        def __reduce__(self):
            for _ in range(DURING_WRITE):
                os.kill(os.getpid(), signal.SIGINT)
            return (collections.OrderedDict, ())


    class Probe(trainers.Pix2pixTrainer):
        def train_step(self, x, y, idx, **kw):
            super().train_step(x, y, idx, **kw)
            if self.global_step + 1 == FIRST_AT_STEP:
                os.kill(os.getpid(), signal.SIGINT)

        def save_checkpoint(self, interrupted=False):
            self._saving_interrupted = interrupted
            return super().save_checkpoint(interrupted)

        def checkpoint_state(self):
            state = super().checkpoint_state()
            if self._saving_interrupted or not INTERRUPTED_ONLY:
                state["probe"] = SignalsWhilePickled()
            return state


    trainers.Pix2pixTrainer = Probe
    sys.exit(main(["train", "--config", sys.argv[1]]))
    """
)


def _run_probe(tmp_path, cfg_path, first_at_step, during_write, interrupted_only):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    args = [str(cfg_path), str(first_at_step), str(during_write), str(int(interrupted_only))]
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stderr


def test_second_signal_during_the_checkpoint_write_lets_it_finish(tmp_path, dataroot):
    cfg_path = _config(tmp_path, dataroot)
    code, stderr = _run_probe(tmp_path, cfg_path, 3, 1, True)
    exp = tmp_path / "out" / "sig_v1"
    assert code == 130, stderr
    assert "still writing" in stderr and "Traceback" not in stderr
    state = load_checkpoint(exp / "checkpoints" / "interrupted.pt")  # complete, readable
    # the signal sent inside the 3rd step waited for it: whole steps only, resumable exactly
    assert state["interrupted"] and state["global_step"] == 3
    assert state["position"] == {
        "epoch": 0,
        "batches_done": 3,
        "batches_per_epoch": 8,
        "epoch_start_step": 0,
        "exact": True,
    }
    assert "stopping once the training step is done" in stderr
    assert f"resume with: nectargan train --resume {exp}" in stderr
    assert not list((exp / "checkpoints").glob(".*.tmp"))


def test_third_signal_abandons_the_write_and_no_resume_hint(tmp_path, dataroot):
    cfg_path = _config(tmp_path, dataroot)
    code, stderr = _run_probe(tmp_path, cfg_path, 3, 2, True)
    exp = tmp_path / "out" / "sig_v1"
    assert code == 130, stderr
    assert "warning: SIGINT a third time: abandoning writing" in stderr
    assert "Traceback" not in stderr
    assert not (exp / "checkpoints" / "interrupted.pt").exists()
    assert not list((exp / "checkpoints").glob(".*.tmp"))  # no half-written leftovers
    assert "resume with" not in stderr
    assert "nothing to resume" in stderr


def test_first_signal_during_an_epoch_checkpoint_is_held_until_it_is_written(tmp_path, dataroot):
    cfg_path = _config(tmp_path, dataroot)
    code, stderr = _run_probe(tmp_path, cfg_path, -1, 1, False)
    exp = tmp_path / "out" / "sig_v1"
    assert code == 130, stderr
    assert "stopping once writing" in stderr
    state = load_checkpoint(exp / "checkpoints" / "epoch_0001.pt")
    assert state["epoch"] == 1 and not state["interrupted"]
    # then training stopped as on any Ctrl-C: the state after epoch 1 is saved too
    assert load_checkpoint(exp / "checkpoints" / "interrupted.pt")["epoch"] == 1
    latest = json.loads((exp / "checkpoints" / "latest.json").read_text())
    assert latest == {"file": "interrupted.pt"}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_exit_code_follows_the_signal(signum):
    from nectargan.trainers.signals import Interrupted, exit_code_for

    assert exit_code_for(Interrupted(signum)) == 128 + signum
    assert exit_code_for(KeyboardInterrupt()) == 130
