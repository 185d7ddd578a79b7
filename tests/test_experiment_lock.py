"""One run per experiment directory (flock), stale temp files, and umask-respecting writes."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys

import pytest
from _support import tiny_training_config, wait_for, write_config

from nectargan.trainers import find_checkpoint, load_checkpoint
from nectargan.trainers.lock import ExperimentBusy, ExperimentLock
from nectargan.utils.atomic import atomic_write_text, is_temp_name


def _train(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "nectargan", "train", *args],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def test_second_run_is_refused_naming_the_holder_then_resumes_after_kill_9(tmp_path, dataroot):
    cfg = tiny_training_config(
        tmp_path / "out", dataroot, "lock", train={"epochs": 500, "epochs_decay": 0}
    )
    cfg_path = write_config(tmp_path, cfg)
    exp = tmp_path / "out" / "lock_v1"
    first = subprocess.Popen(
        [sys.executable, "-m", "nectargan", "train", "--config", str(cfg_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: (exp / "checkpoints" / "epoch_0001.pt").exists() or first.poll() is not None,
            120,
            what="first checkpoint",
        )
        assert first.poll() is None
        second = _train("--resume", str(exp), "--epochs", "600")
        assert second.returncode == 2, second.stderr
        assert f"is in use by another training run (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
        assert not (exp / "config.resume1.json").exists()  # the refused run wrote nothing
    finally:
        first.send_signal(signal.SIGKILL)  # dies holding the lock: the kernel drops it
        first.wait()

    # what a kill -9 in the middle of a checkpoint write leaves behind
    stale = exp / "checkpoints" / ".epoch_0002.pt.k3j_x9q2.tmp"
    stale.write_bytes(b"\0" * 4096)
    unrelated = exp / "checkpoints" / "notes.tmp"
    unrelated.write_text("not ours")
    done = load_checkpoint(find_checkpoint(exp))["epoch"]
    resumed = _train("--resume", str(exp), "--epochs", str(done + 1))
    assert resumed.returncode == 0, resumed.stderr
    # ours, and any a kill -9 mid-write left (the status record or a checkpoint being written)
    assert re.search(r"removed \d+ temporary file\(s\)", resumed.stderr), resumed.stderr
    assert not stale.exists() and unrelated.exists()
    assert load_checkpoint(exp / "checkpoints" / f"epoch_{done + 1:04d}.pt")["epoch"] == done + 1


def test_lock_within_one_process_passes_to_the_newer_holder(tmp_path):
    a = ExperimentLock(tmp_path).acquire()
    b = ExperimentLock(tmp_path).acquire()  # e.g. a notebook resuming without close()
    assert b.held and not a.held
    b.release()
    script = (
        "import sys; from nectargan.trainers.lock import ExperimentLock; "
        "ExperimentLock(sys.argv[1]).acquire(); print('got it')"
    )
    c = ExperimentLock(tmp_path).acquire()
    other = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True
    )
    assert other.returncode != 0 and f"(pid {os.getpid()})" in other.stderr
    assert "ExperimentBusy" in other.stderr
    c.release()
    other = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True
    )
    assert other.stdout.strip() == "got it", other.stderr
    held = subprocess.Popen(
        [sys.executable, "-c", script + "; sys.stdin.read()", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert held.stdout.readline().strip() == "got it"
        with pytest.raises(ExperimentBusy, match=f"pid {held.pid}"):
            ExperimentLock(tmp_path).acquire()
    finally:
        held.communicate("")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "f.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_temp_names_are_ours_only():
    assert is_temp_name(".epoch_0003.pt.a1b2c3d4.tmp")
    assert is_temp_name(".loss_log.json.zz_zz_zz.tmp")
    assert not is_temp_name("epoch_0003.pt")
    assert not is_temp_name("notes.tmp")
    assert not is_temp_name(".epoch_0003.pt.tmp")
