"""Two "nodes" on one machine: two ``torchrun --nnodes 2`` launches (gloo, one process each).

Node 1 is then killed mid-run (its launcher and its worker, SIGKILL, as a
crashed machine goes): node 0 must stop within a bound, naming the lost peer,
with the last epoch checkpoint intact, and a two-node ``--resume`` continues
the run to its end with one dashboard and one set of files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _support import free_port, spawn_logged, tiny_training_config, wait_for, write_config

from nectargan.trainers import load_checkpoint
from nectargan.trainers.checkpoint import list_epoch_checkpoints

LOST_PEER_BOUND_S = 60


def launch_node(tmp_path: Path, rank: int, port: int, args: list[str], tag: str):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2"]
    cmd += ["--node_rank", str(rank), "--nproc_per_node", "1"]
    cmd += ["--master_addr", "127.0.0.1", "--master_port", str(port)]
    cmd += ["-m", "nectargan", "train", *args]
    return spawn_logged(cmd, tmp_path / f"{tag}{rank}", NECTARGAN_DIST_TIMEOUT="30")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (torchrun puts its workers in sessions of their own)."""
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out += tree(int(child))
    return out


def kill_tree(proc: subprocess.Popen) -> None:
    for pid in reversed(tree(proc.pid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.timeout(900)  # two launches of two nodes on a busy 2-core machine
def test_two_nodes_lose_one_then_resume(tmp_path, dataroot, visdom_server, env_name):
    cfg = tiny_training_config(
        tmp_path / "out",
        dataroot,
        "nodes",
        train={"epochs": 500, "epochs_decay": 0, "mixed_precision": "off"},
    )
    cfg_path = write_config(tmp_path, cfg)
    exp = tmp_path / "out" / "nodes_v1"
    port = free_port()
    nodes = [launch_node(tmp_path, r, port, ["--config", str(cfg_path)], "run") for r in (0, 1)]
    try:
        wait_for(
            lambda: (
                (exp / "checkpoints" / "epoch_0002.pt").exists()
                or any(n.poll() is not None for n in nodes)
            ),
            240,
            what="two epochs on two nodes",
        )
        assert all(n.poll() is None for n in nodes), (tmp_path / "run0.err").read_text()
        kill_tree(nodes[1])  # node 1 goes away as a crashed machine would
        code = nodes[0].wait(timeout=LOST_PEER_BOUND_S)
    finally:
        for node in nodes:
            if node.poll() is None:
                kill_tree(node)
    err = (tmp_path / "run0.err").read_text()
    assert code != 0
    assert "nectargan train (rank 0): lost contact with the peer at 127.0.0.1:" in err, err
    assert "2 processes in the job" in err
    assert f"resume with: nectargan train --resume {exp}" in err
    epochs = list_epoch_checkpoints(exp)
    last = max(epochs)
    assert last >= 2 and load_checkpoint(epochs[last])["epoch"] == last  # intact

    # both nodes again, resuming: one more epoch, one dashboard, one set of files
    args = ["--resume", str(exp), "--epochs", str(last + 1), "--visdom"]
    args += ["--port", str(visdom_server.port), "--env", env_name]
    port = free_port()
    nodes = [launch_node(tmp_path, r, port, args, "res") for r in (0, 1)]
    try:
        codes = [n.wait(timeout=300) for n in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                kill_tree(node)
    out0 = (tmp_path / "res0.out").read_text()
    errs = [(tmp_path / f"res{r}.err").read_text()[-3000:] for r in (0, 1)]
    assert codes == [0, 0], errs
    # from interrupted.pt: after the last whole step of the epoch the node was lost in
    resumed = (f"resuming after epoch {last})", f"resuming epoch {last + 1} after batch")
    assert any(r in out0 for r in resumed) and f"done: {last + 1} epochs" in out0
    assert (tmp_path / "res1.out").read_text().count("experiment: ") == 0  # rank 0 speaks
    assert load_checkpoint(exp / "checkpoints" / f"epoch_{last + 1:04d}.pt")["epoch"] == last + 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["nodes_v1"]
    assert visdom_server.line_series("loss_G", env_name)


def test_lost_peer_messages_name_the_address():
    from nectargan.trainers.peer_loss import describe_peer_loss

    closed = RuntimeError("[pair.cc:553] Connection closed by peer [127.0.0.1]:15245. This is ...")
    reset = RuntimeError("[pair.cc:537] Read error [10.0.0.7]:3800: Connection reset by peer.")
    assert "the peer at 127.0.0.1:15245 (connection closed by peer" in describe_peer_loss(closed, 2)
    assert "the peer at 10.0.0.7:3800 (connection reset by peer" in describe_peer_loss(reset, 4)
    assert describe_peer_loss(RuntimeError("shape mismatch"), 2) is None
    assert describe_peer_loss(ValueError("Connection closed by peer"), 2) is None
