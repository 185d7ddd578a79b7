"""A stop while an epoch's validation runs: the resumed run still writes that epoch's row.

Each test stops a real ``python -m nectargan train`` with a real signal sent at
an exact moment: the process sends it to itself as the validation of a chosen
epoch starts (SIGTERM, handled like a preemption) or kills itself there with
SIGKILL (a lost node: nothing runs on the way out). The same command then
finishes the run, and its per-epoch records must equal those of a run that was
never stopped: the validation rows (metrics of the same weights), ``best.pt``,
the examples, the epoch checkpoints and the dashboard's ``val_metrics`` points.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from _support import tiny_training_config, write_config

from nectargan.runs import read_status
from nectargan.runs import records as rm
from nectargan.trainers import load_checkpoint
from nectargan.visualizer.visdom import panels

EPOCHS = 3  # 2 + 1 decay
CMD = [sys.executable, "-m", "nectargan", "train"]
FINISHING = "epoch 2 stopped after its training, before its validation was written"
METRICS = ("epoch", "l1", "psnr", "ssim", "images", "precision")  # not "seconds"


# deterministic on CPU: fp32, no loader workers; validation, examples and a checkpoint
# every epoch
SECTIONS = {
    "common": {"device": "cpu"},
    "dataloader": {"num_workers": 0},
    "train": {"epochs": EPOCHS - 1, "epochs_decay": 1, "mixed_precision": "off"},
}


def _config(directory, dataroot, server=None, env: str = "", **save):
    """The tiny run in ``directory``; the dashboard on ``server``'s env ``env`` when given."""
    vis = {"val_every": 1}
    if server is not None:
        vis.update(enable=True, port=server.port, env_name=env)
    save = {"example_save_rate": 1, "model_save_rate": 1, **save}
    cfg = tiny_training_config(
        directory / "out", dataroot, "job", save=save, visualizer={"visdom": vis}, **SECTIONS
    )
    directory.mkdir(parents=True, exist_ok=True)
    return write_config(directory, cfg)


def _run(args, timeout=300):
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=timeout)


STOPPER = textwrap.dedent(
    """
    import os, signal, sys
    import nectargan.trainers.validation as validation
    from nectargan.cli.main import main

    SIGNAL = getattr(signal, sys.argv[2])
    AT_EPOCH = int(sys.argv[3])
    run = validation.Validator.run


    def stopped_inside(self, generator, epoch):
        if epoch == AT_EPOCH:  # arrives inside the validation, as a preemption would
            os.kill(os.getpid(), SIGNAL)
        return run(self, generator, epoch)


    validation.Validator.run = stopped_inside
    sys.exit(main(["train", "--config", sys.argv[1], *sys.argv[4:]]))
    """
)


def _stop_in_validation(tmp_path, cfg, sig: str, epoch: int, *args: str):
    script = tmp_path / "stopper.py"
    script.write_text(STOPPER)
    return subprocess.run(
        [sys.executable, str(script), str(cfg), sig, str(epoch), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _val_rows(exp) -> list[dict]:
    return [{k: row[k] for k in METRICS} for row in rm.read_val_metrics(exp)]


def _weights(path) -> dict:
    return load_checkpoint(path)["networks"]["G"]["model"]


def _assert_same_records(exp, ref) -> None:
    """The per-epoch records of ``exp`` equal those of the uninterrupted ``ref``."""
    assert _val_rows(exp) == _val_rows(ref)
    assert [r["epoch"] for r in rm.read_epoch_stats(exp)] == list(range(1, EPOCHS + 1))
    assert rm.read_val_best(exp) == rm.read_val_best(ref)
    saved = [p.name for p in (exp / "checkpoints").glob("epoch_*.pt")]  # save rate 0: the last
    assert f"epoch_{EPOCHS:04d}.pt" in saved
    for name in ["best.pt", *saved]:
        mine, theirs = _weights(exp / "checkpoints" / name), _weights(ref / "checkpoints" / name)
        assert all(torch.equal(v, mine[k]) for k, v in theirs.items()), name
    examples = sorted(p.name for p in (ref / "examples").glob("*.png"))
    assert examples and sorted(p.name for p in (exp / "examples").glob("*.png")) == examples
    for name in examples:
        assert (exp / "examples" / name).read_bytes() == (ref / "examples" / name).read_bytes()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, dataroot):
    """The same run, never stopped."""
    directory = tmp_path_factory.mktemp("ref")
    cfg = _config(directory, dataroot)
    done = _run(["--config", str(cfg)])
    assert done.returncode == 0, done.stderr
    return directory / "out" / "job_v1"


def test_sigterm_during_validation_then_auto_resume_writes_that_epochs_row(
    tmp_path, dataroot, reference
):
    cfg = _config(tmp_path, dataroot)
    exp = tmp_path / "out" / "job_v1"
    first = _stop_in_validation(tmp_path, cfg, "SIGTERM", 2, "--auto-resume")
    assert first.returncode == 143, first.stderr
    assert [r["epoch"] for r in rm.read_val_metrics(exp)] == [1]  # epoch 2's is not written
    assert (exp / "checkpoints" / "interrupted.pt").is_file()

    again = _run(["--config", str(cfg), "--auto-resume"])  # the requeue: same command
    assert again.returncode == 0, again.stderr
    assert FINISHING in again.stdout + again.stderr
    assert not (tmp_path / "out" / "job_v2").exists()
    _assert_same_records(exp, reference)
    status = read_status(exp)
    assert (status.state, status.epochs_completed) == ("finished", EPOCHS)


def test_sigterm_during_the_last_validation_then_resume_writes_it(tmp_path, dataroot, reference):
    """The last epoch's training is done, its validation is not: the run is not complete."""
    cfg = _config(tmp_path, dataroot)
    exp = tmp_path / "out" / "job_v1"
    first = _stop_in_validation(tmp_path, cfg, "SIGTERM", EPOCHS)
    assert first.returncode == 143, first.stderr
    assert [r["epoch"] for r in rm.read_val_metrics(exp)] == [1, 2]

    again = _run(["--resume", str(exp)])
    assert again.returncode == 0, again.stderr
    assert FINISHING.replace("2", "3") in again.stdout + again.stderr
    _assert_same_records(exp, reference)
    assert read_status(exp).state == "finished"
    assert not (exp / "checkpoints" / "interrupted.pt").exists()  # epoch 3's is past it
    complete = _run(["--config", str(cfg), "--auto-resume"])  # now it is complete
    assert complete.returncode == 0 and "already complete" in complete.stdout + complete.stderr


@pytest.mark.parametrize("model_save_rate", [1, 0])
def test_kill_9_during_validation_then_auto_resume_writes_that_epochs_row(
    tmp_path, dataroot, reference, model_save_rate
):
    """A lost node: no interrupted.pt. A timed mid_epoch.pt (due after every step but an
    epoch's last) is in epoch 2. With an epoch checkpoint (written before the validation)
    the requeue continues from it and validates epoch 2 first; without one it retrains
    epoch 2's last batch from mid_epoch.pt, and epoch 2's end validates as usual."""
    cfg = _config(tmp_path, dataroot, every_minutes=1e-9, model_save_rate=model_save_rate)
    exp = tmp_path / "out" / "job_v1"
    first = _stop_in_validation(tmp_path, cfg, "SIGKILL", 2, "--auto-resume")
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert not (exp / "checkpoints" / "interrupted.pt").exists()
    assert [r["epoch"] for r in rm.read_val_metrics(exp)] == [1]

    again = _run(["--config", str(cfg), "--auto-resume"])
    assert again.returncode == 0, again.stderr
    name = "epoch_0002.pt (after epoch 2)" if model_save_rate else "mid_epoch.pt (epoch 2 after"
    assert f"continuing {exp} from checkpoints/{name}" in again.stderr
    _assert_same_records(exp, reference)
    assert not (exp / "checkpoints" / "mid_epoch.pt").exists()  # superseded by epoch 3's


def test_dashboard_val_points_of_a_run_stopped_in_validation(
    tmp_path, dataroot, reference, visdom_server, env_name
):
    """The resumed run's ``val_metrics`` window holds one point per epoch, the
    reference's values: read back from a real Visdom server."""
    cfg = _config(tmp_path, dataroot, visdom_server, env_name)
    exp = tmp_path / "out" / "job_v1"
    first = _stop_in_validation(tmp_path, cfg, "SIGTERM", 2)
    assert first.returncode == 143, first.stderr
    again = _run(["--resume", str(exp)])
    assert again.returncode == 0, again.stderr
    ref_rows = rm.read_val_metrics(reference)
    series = visdom_server.line_series("val_metrics", env_name)
    for name, key in panels.VAL_COLUMNS.items():
        xs, ys = series[name]
        assert xs == [r["epoch"] for r in ref_rows], name
        assert ys == pytest.approx([r[key] for r in ref_rows], rel=1e-12), name


def test_fit_called_again_after_a_ctrl_c_in_validation_validates_that_epoch_first(
    tmp_path, dataroot, reference
):
    """In a notebook: Ctrl-C during epoch 2's validation, then ``fit()`` again on the same
    trainer. It validates epoch 2 (the weights are still those of its end) before epoch 3."""
    import os

    from nectargan.trainers import Pix2pixTrainer

    trainer = Pix2pixTrainer(str(_config(tmp_path, dataroot)))
    validator = trainer.monitor.validator
    run = validator.run

    def interrupted_once(generator, epoch):
        if epoch == 2 and not interrupted_once.done:
            interrupted_once.done = True
            os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, inside the validation
        return run(generator, epoch)

    interrupted_once.done = False
    validator.run = interrupted_once
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert [r["epoch"] for r in rm.read_val_metrics(trainer.experiment_dir)] == [1]
    trainer.fit()
    trainer.close()
    _assert_same_records(trainer.experiment_dir, reference)
