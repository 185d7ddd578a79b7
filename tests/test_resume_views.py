"""What a resumed run shows: the whole loss history on the dashboard, this session's
throughput, the pid of a run still in its first epoch, and the per-epoch line of a
Python loop. Real runs, a real Visdom server read back, a real second process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from _support import tiny_training_config, wait_for, write_config

from nectargan.cli.main import main
from nectargan.trainers import Pix2pixTrainer

BATCHES = 8  # 32 training pairs / batch 4
EVERY = 3  # display steps at idx 0, 3, 6
STOP = (1, 5)  # Ctrl-C after batch idx 5 of the second epoch: 6 of its 8 batches done


def _config(tmp_path, dataroot, visdom=None, **sections):
    vis = {"update_frequency": EVERY, **(visdom or {})}
    return tiny_training_config(
        tmp_path / "out", dataroot, "view", visualizer={"visdom": vis}, **sections
    )


def _ctrl_c_at(epoch: int, idx: int):
    def observe(trainer, i):
        if (trainer.current_epoch, i) == (epoch, idx):
            raise KeyboardInterrupt

    return observe


@pytest.fixture
def resumed(tmp_path, dataroot, visdom_server, env_name):
    """A run stopped by Ctrl-C inside epoch 2, then resumed to the end, dashboard on."""
    vis = {"enable": True, "port": visdom_server.port, "env_name": env_name}
    first = Pix2pixTrainer(_config(tmp_path, dataroot, vis))
    first.step_observers.append(_ctrl_c_at(*STOP))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    first.close()
    exp = first.experiment_dir
    resume = {"resume": {"enable": True, "experiment_dir": str(exp)}}
    again = Pix2pixTrainer(_config(tmp_path, dataroot, vis, train=resume))
    assert again.progress.batches_done == STOP[1] + 1
    again.fit()
    again.close()
    return exp


def test_resumed_dashboard_shows_the_losses_from_the_runs_beginning(
    resumed, visdom_server, env_name
):
    expected_x = [e + i / BATCHES for e in range(2) for i in range(0, BATCHES, EVERY)]
    for win, names in (("loss_G", {"G_GAN", "G_L1"}), ("loss_D", {"D_real", "D_fake"})):
        series = visdom_server.line_series(win, env_name)
        assert set(series) == names
        for xs, ys in series.values():
            assert xs == pytest.approx(expected_x)  # from epoch 0, as if never stopped
            assert len(ys) == len(expected_x)


def test_resumed_epochs_throughput_counts_only_what_this_session_trained(resumed):
    rows = json.loads((resumed / "epoch_stats.json").read_text())["rows"]
    assert [r["epoch"] for r in rows] == [1, 2]
    first, second = rows
    assert first["images"] == BATCHES * 4
    assert second["images"] == (BATCHES - STOP[1] - 1) * 4  # 2 batches of 4 after the resume
    assert second["images_per_s"] == pytest.approx(second["images"] / second["seconds"], rel=1e-3)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import nectargan.trainers as trainers
    from nectargan.cli.main import main

    GO = Path(sys.argv[2])


    class FirstEpochThatWaits(trainers.Pix2pixTrainer):
        def train_step(self, x, y, idx, **kw):
            while not GO.exists():  # held inside epoch 1 until the test has looked
                time.sleep(0.05)
            super().train_step(x, y, idx, **kw)


    trainers.Pix2pixTrainer = FirstEpochThatWaits
    sys.exit(main(["train", "--config", sys.argv[1]]))
    """
)


def test_resume_of_a_run_in_its_first_epoch_names_the_pid_holding_it(tmp_path, dataroot, capsys):
    cfg = write_config(tmp_path, _config(tmp_path, dataroot))
    script, go = tmp_path / "holder.py", tmp_path / "go"
    script.write_text(HOLDER)
    exp = tmp_path / "out" / "view_v1"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(cfg), str(go)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: (exp / "run_status.json").exists() or proc.poll() is not None,
            120,
            what="the run's start",
        )
        assert proc.poll() is None
        assert main(["train", "--resume", str(exp)]) == 2
    finally:
        go.touch()
        code = proc.wait(timeout=300)
    err = capsys.readouterr().err
    assert f"is in use by a training run (pid {proc.pid})" in err, err
    assert "has not written its first checkpoint yet" in err and "no checkpoint in" not in err
    assert code == 0, proc.stderr.read()


def test_a_python_loop_prints_the_clis_epoch_line_unless_turned_off(tmp_path, dataroot, capsys):
    trainer = Pix2pixTrainer(_config(tmp_path, dataroot))
    trainer.train_paired(0)
    out = capsys.readouterr().out
    assert out.startswith("epoch 1/2 took ") and "; next lr G " in out
    assert out.count("\n") == 1
    trainer.epoch_lines = False  # the documented switch
    trainer.train_paired(1)
    trainer.close()
    assert capsys.readouterr().out == ""


def test_the_cli_prints_each_epoch_line_once(tmp_path, dataroot, capsys):
    cfg = write_config(tmp_path, _config(tmp_path, dataroot))
    assert main(["train", "--config", str(cfg)]) == 0
    captured = capsys.readouterr()
    both = captured.out + captured.err  # the CLI writes it above its progress bar (stderr)
    assert both.count("epoch 1/2 took ") == 1 and both.count("epoch 2/2 took ") == 1
