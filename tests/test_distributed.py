"""Two training processes on torch.distributed (gloo, CPU): one dashboard, one experiment.

Each run goes through ``nectargan train --nproc 2``, i.e. torchrun started by
the CLI, exactly as a user would launch it. ``NECTARGAN_RANK_DEBUG=1`` makes
every rank write its own (not averaged) display-step losses and a digest of
its networks per epoch to ``<exp>/rank_losses/rank{r}.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from _support import spawn_logged, tiny_training_config, wait_for, write_config

from nectargan.cli.main import main
from nectargan.cli.train_cmd import strip_option, torchrun_args
from nectargan.losses import read_loss_log
from nectargan.runs.records import read_val_metrics
from nectargan.trainers import Pix2pixTrainer, load_checkpoint
from nectargan.trainers.distributed import RANK_DEBUG_ENV, launched_world_size

BATCHES = 4  # 32 training pairs / 2 ranks / batch 4
UPDATE_FREQUENCY = 3  # display at idx 0 and 3


def tiny_config(tmp_path, dataroot, epochs=1, epochs_decay=1, **visdom) -> dict:
    return tiny_training_config(
        tmp_path / "out",
        dataroot,
        "ddp",
        train={"epochs": epochs, "epochs_decay": epochs_decay, "mixed_precision": "off"},
        visualizer={"visdom": {"update_frequency": UPDATE_FREQUENCY, **visdom}},
    )


def launch(tmp_path, *args: str, tag: str = "run") -> subprocess.Popen:
    """``python -m nectargan train --nproc 2 ...`` in its own process group, like a terminal."""
    cmd = [sys.executable, "-m", "nectargan", "train", "--nproc", "2", *args]
    return spawn_logged(cmd, tmp_path / tag, **{RANK_DEBUG_ENV: "1"})


def finish(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rank_data(exp) -> list[dict]:
    return [json.loads((exp / "rank_losses" / f"rank{r}.json").read_text()) for r in (0, 1)]


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


# -- a full run ---------------------------------------------------------------------------------


def test_two_ranks_one_dashboard_of_averages_and_equal_weights(
    tmp_path, dataroot, visdom_server, env_name
):
    cfg = tiny_config(tmp_path, dataroot, enable=True, port=visdom_server.port, env_name=env_name)
    proc = launch(tmp_path, "--config", str(write_config(tmp_path, cfg)))
    code = finish(proc, timeout=120)
    out, err = (tmp_path / "run.out").read_text(), (tmp_path / "run.err").read_text()
    assert code == 0, err
    assert "processes: 2 (gloo), batch 4 per process = 8 per step" in out
    assert out.count("experiment: ") == 1 and out.count("done: 2 epochs") == 1

    # one experiment, one checkpoint set, examples and loss log written once (rank 0)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ddp_v1"]
    exp = tmp_path / "out" / "ddp_v1"
    assert sorted(p.name for p in (exp / "checkpoints").glob("*.pt")) == [
        "best.pt",
        "epoch_0001.pt",
        "epoch_0002.pt",
    ]
    assert [r["epoch"] for r in read_val_metrics(exp)] == [1, 2]  # validated by rank 0 alone
    assert len(list((exp / "examples").glob("*.png"))) == 2 * 2
    log = read_loss_log(exp)["losses"]
    assert all(cols["step"] == list(range(2 * BATCHES)) for cols in log.values())
    assert load_checkpoint(exp / "checkpoints" / "epoch_0002.pt")["global_step"] == 2 * BATCHES

    # the graphed points are the mean of the two ranks' own values
    r0, r1 = rank_data(exp)
    expected_x = [e + i / BATCHES for e in range(2) for i in range(0, BATCHES, UPDATE_FREQUENCY)]
    assert [p["x"] for p in r0["display"]] == pytest.approx(expected_x)
    assert [p["x"] for p in r1["display"]] == pytest.approx(expected_x)
    for win, names in (("loss_G", ("G_GAN", "G_L1")), ("loss_D", ("D_real", "D_fake"))):
        series = visdom_server.line_series(win, env_name)
        assert set(series) == set(names)
        for name in names:
            xs, ys = series[name]
            a = [p["losses"][name] for p in r0["display"]]
            b = [p["losses"][name] for p in r1["display"]]
            assert a != b  # the ranks saw different data...
            assert xs == pytest.approx(expected_x)
            assert ys == pytest.approx([(u + v) / 2 for u, v in zip(a, b, strict=True)], rel=1e-5)

    # ...and still hold bitwise-identical networks (parameters and BN stats) after each epoch
    assert set(r0["digests"]) == {"1", "2"}
    assert r0["digests"] == r1["digests"]


# -- Ctrl-C, then resume ------------------------------------------------------------------------


def test_sigint_stops_all_ranks_and_the_run_resumes_distributed(
    tmp_path, dataroot, visdom_server, env_name
):
    cfg = tiny_config(
        tmp_path,
        dataroot,
        epochs=500,
        epochs_decay=0,
        enable=True,
        port=visdom_server.port,
        env_name=env_name,
    )
    exp = tmp_path / "out" / "ddp_v1"
    proc = launch(tmp_path, "--config", str(write_config(tmp_path, cfg)), tag="sigint")
    try:
        wait_for(
            lambda: (exp / "checkpoints" / "epoch_0001.pt").exists() or proc.poll() is not None,
            90,
            what="first epoch checkpoint",
        )
        assert proc.poll() is None, (tmp_path / "sigint.err").read_text()
        time.sleep(0.3)  # inside a later epoch
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        sent = time.monotonic()
        code = finish(proc, timeout=60)
        took = time.monotonic() - sent
        wait_for(lambda: group_gone(proc.pid), 10, what="every rank gone")
    finally:
        if not group_gone(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    err = (tmp_path / "sigint.err").read_text()
    assert code == 130, err
    assert took < 30, f"exited {took:.1f}s after SIGINT"
    assert "Traceback" not in err and "stopped all ranks" in err
    assert err.count(f"resume with: nectargan train --resume {exp}") == 1

    state = load_checkpoint(exp / "checkpoints" / "interrupted.pt")
    assert state["interrupted"] and state["epoch"] >= 1
    steps_done = state["global_step"]
    for name, cols in read_loss_log(exp)["losses"].items():
        n = len(cols["step"])
        assert n in (steps_done, steps_done + 1), (name, n, steps_done)
        assert cols["step"] == list(range(n))
    assert visdom_server.line_series("loss_G", env_name)  # rank 0 flushed the dashboard

    # the same command with --auto-resume: rank 0 finds the run, both ranks continue it
    more = state["epoch"] + 1
    again = ["--config", str(write_config(tmp_path, cfg)), "--auto-resume", "--no-visdom"]
    proc = launch(tmp_path, *again, "--epochs", str(more), tag="res")
    assert finish(proc, timeout=120) == 0, (tmp_path / "res.err").read_text()
    done = state.get("position", {}).get("batches_done", 0)
    where = f"epoch {more} after batch {done}" if done else f"resuming after epoch {more - 1}"
    assert where in (tmp_path / "res.out").read_text() + (tmp_path / "res.err").read_text()
    assert not (tmp_path / "out" / "ddp_v2").exists()
    final = load_checkpoint(exp / "checkpoints" / f"epoch_{more:04d}.pt")
    # the cut epoch goes on after the batches it had done: every step counted once
    assert final["global_step"] == more * BATCHES
    r0, r1 = rank_data(exp)
    assert r0["digests"] == r1["digests"] and str(more) in r0["digests"]

    # once more: complete, and the launcher says so without starting any rank
    proc = launch(tmp_path, *again, "--epochs", str(more), tag="done")
    assert finish(proc, timeout=60) == 0, (tmp_path / "done.err").read_text()
    assert "is already complete" in (tmp_path / "done.out").read_text()


# -- no launcher: nothing distributed -------------------------------------------------------------


def test_single_process_has_no_process_group(tmp_path, dataroot):
    assert launched_world_size() == 1
    trainer = Pix2pixTrainer(tiny_config(tmp_path, dataroot, epochs_decay=0))
    assert trainer.dist is None and trainer.world_size == 1 and trainer.is_main_process
    assert trainer.gen_fwd is trainer.gen and trainer.disc_fwd is trainer.disc
    trainer.fit()
    assert not torch.distributed.is_initialized()


def test_nproc_is_stripped_for_torchrun():
    argv = ["train", "--nproc", "2", "--config", "c.json", "--nproc=3", "--epochs", "2"]
    assert strip_option(argv, "--nproc") == ["train", "--config", "c.json", "--epochs", "2"]
    assert torchrun_args(["train", "--nproc", "4"], 4) == [
        "--standalone",
        "--nproc_per_node",
        "4",
        "-m",
        "nectargan",
        "train",
    ]


def test_bad_nproc_is_a_user_error(tmp_path, dataroot, capsys):
    cfg_path = write_config(tmp_path, tiny_config(tmp_path, dataroot))
    assert main(["train", "--config", str(cfg_path), "--nproc", "0"]) == 2
    assert "--nproc: expected a number of processes >= 1, got 0" in capsys.readouterr().err
    # settings are checked before torchrun starts any rank
    assert main(["train", "--config", str(cfg_path), "--nproc", "2", "--epochs", "-2"]) == 2
    assert "train.epochs: expected >= 0, got -2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "code"), [(["config", "show"], 0), (["train", "--config", "missing.json"], 2)]
)
def test_a_rank_ends_without_finalization_yet_keeps_its_status_and_output(tmp_path, args, code):
    """A torchrun rank leaves by ``os._exit`` (gloo's threads may still hold tensors that
    need the interpreter), so its buffered output must be flushed first: a pipe is buffered."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {"WORLD_SIZE": "2"}
    result = subprocess.run(
        [sys.executable, "-m", "nectargan", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == code, result.stderr
    if code == 0:
        assert json.loads(result.stdout)["train"]["epochs"] > 0  # the whole JSON arrived
    else:
        assert "nectargan train: error: invalid missing.json" in result.stderr
