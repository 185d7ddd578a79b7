"""A full disk during training, on a real small tmpfs: warn once, retry, stop with 75.

The experiment directory lives on a 32 MB tmpfs mounted for the test (CI
runs as root; elsewhere the tests skip, saying why). The disk is filled by a
plain file written until the kernel says ENOSPC, and freed by deleting it.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys

import pytest
from _support import tiny_training_config, wait_for, write_config

from nectargan.runs import read_status
from nectargan.runs.status import StatusWriter
from nectargan.trainers import load_checkpoint
from nectargan.utils.diskfull import MAX_FAILED_CHECKPOINTS, StorageStop, WriteHealth


@pytest.fixture
def small_disk(tmp_path):
    """A 32 MB tmpfs at ``tmp_path/disk``, unmounted afterwards.

    Room for several 3.4 MB checkpoints of the tiny nets plus ``interrupted.pt``
    once the filler is gone: 16 MB left the final interrupted.pt a few hundred
    KB short, a second, genuine, full-disk warning.
    """
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk) -> os.PathLike:
    """Write a file until the filesystem is full; return it (delete it to free the space)."""
    filler = disk / "filler"
    chunk = b"\0" * (64 * 1024)
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    with open(filler, "ab", buffering=0) as handle:  # the last partial block too
        try:
            while True:
                handle.write(b"\0" * 512)
        except OSError:
            pass
    return filler


def start_training(tmp_path, disk, dataroot):
    cfg = tiny_training_config(
        disk / "out", dataroot, "full", train={"epochs": 500, "epochs_decay": 0}
    )
    stderr = open(tmp_path / "stderr", "w")  # noqa: SIM115 (closed by the caller)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nectargan", "train", "--config", str(write_config(tmp_path, cfg))],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    return proc, stderr, disk / "out" / "full_v1"


def stderr_of(tmp_path) -> str:
    return (tmp_path / "stderr").read_text()


def wait_running_past(tmp_path, proc, ckpts, epoch: int) -> None:
    """Wait for ``epoch``'s checkpoint and check the run is still going."""
    name = f"epoch_{epoch:04d}.pt"
    wait_for(lambda: (ckpts / name).exists() or proc.poll() is not None, 120, what=name)
    assert proc.poll() is None, stderr_of(tmp_path)


def stop(proc, err) -> None:
    """Teardown: a run the test did not end is killed; the stderr file is closed."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    err.close()


def test_full_disk_warns_once_recovers_and_keeps_checkpoints(tmp_path, small_disk, dataroot):
    proc, err, exp = start_training(tmp_path, small_disk, dataroot)
    try:
        ckpts = exp / "checkpoints"
        wait_running_past(tmp_path, proc, ckpts, 2)
        filler = fill(small_disk)
        wait_for(
            lambda: "could not write checkpoint" in stderr_of(tmp_path) or proc.poll() is not None,
            120,
            what="the full-disk warning",
        )
        assert proc.poll() is None, stderr_of(tmp_path)
        # the status record kept up on the full disk (in its reserved room), run still going
        full_at = read_status(exp).epochs_completed
        wait_for(
            lambda: read_status(exp).epochs_completed > full_at or proc.poll() is not None,
            120,
            what="an epoch recorded on the full disk",
        )
        assert proc.poll() is None and read_status(exp).state == "running"
        os.unlink(filler)
        wait_for(
            lambda: (
                "writing checkpoint files again" in stderr_of(tmp_path) or proc.poll() is not None
            ),
            120,
            what="recovery",
        )
        assert proc.poll() is None, stderr_of(tmp_path)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        stop(proc, err)
    stderr = stderr_of(tmp_path)
    assert code == 143, stderr
    assert "Traceback" not in stderr
    assert stderr.count("could not write checkpoint") == 1, stderr
    assert "No space left on device" in stderr and " free there" in stderr
    assert stderr.count("writing checkpoint files again") == 1
    for path in sorted(ckpts.glob("epoch_*.pt")):  # every checkpoint on disk is whole
        assert load_checkpoint(path)["epoch"] == int(path.stem.split("_")[1])
    assert not list(ckpts.glob(".*.tmp"))
    assert (read_status(exp).state, read_status(exp).exit_code) == ("interrupted", 143)


def test_three_failed_checkpoint_saves_stop_with_exit_75(tmp_path, small_disk, dataroot):
    proc, err, exp = start_training(tmp_path, small_disk, dataroot)
    try:
        ckpts = exp / "checkpoints"
        wait_running_past(tmp_path, proc, ckpts, 1)
        fill(small_disk)
        code = proc.wait(timeout=300)
    finally:
        stop(proc, err)
    stderr = stderr_of(tmp_path)
    assert code == 75, stderr
    assert f"{MAX_FAILED_CHECKPOINTS} checkpoint saves in a row failed" in stderr
    assert "Traceback" not in stderr
    assert stderr.count("could not write checkpoint") == 1
    assert load_checkpoint(ckpts / "epoch_0001.pt")["epoch"] == 1
    assert "resume with: nectargan train --resume" in stderr
    status = read_status(exp)  # written on the still-full disk, in the record's reserved room
    assert (status.state, status.exit_code, status.label) == ("disk_full", 75, "stopped: disk full")
    assert f"{MAX_FAILED_CHECKPOINTS} checkpoint saves in a row failed" in status.reason
    assert not list(exp.glob(".*.tmp"))


def test_status_record_written_in_place_when_the_disk_is_full(small_disk):
    writer = StatusWriter(small_disk)
    writer.start(0, 10)
    for done in range(1, 4):  # more sessions' worth of text than the first write held
        writer.progress(done)
    fill(small_disk)
    writer.progress(4)
    writer.end("disk_full", "a reason long enough to grow the record " * 8)
    status = read_status(small_disk)
    assert (status.state, status.epochs_completed, status.exit_code) == ("disk_full", 4, 75)
    assert status.reason.startswith("a reason long enough") and not list(small_disk.glob(".*.tmp"))


def test_write_health_counts_only_consecutive_checkpoint_failures(tmp_path):
    said: list[str] = []
    health = WriteHealth(said.append)

    def fail():
        raise OSError(errno.ENOSPC, "No space left on device")

    target = tmp_path / "epoch_0001.pt"
    for _ in range(MAX_FAILED_CHECKPOINTS - 1):
        assert health.checkpoint(target, fail) is None
    assert health.checkpoint(target, lambda: target) == target  # a success resets the count
    assert [s.startswith("warning: could not write checkpoint") for s in said] == [True, False]
    for _ in range(MAX_FAILED_CHECKPOINTS - 1):
        health.checkpoint(target, fail)
    with pytest.raises(StorageStop) as info:
        health.checkpoint(target, fail)
    assert info.value.exit_code == 75 and str(target) in str(info.value)
