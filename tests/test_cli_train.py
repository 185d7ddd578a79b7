"""``nectargan train | test | demo`` from the command line, including Ctrl-C on a real process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from _support import tiny_training_config, wait_for, write_config

from nectargan.cli.main import main
from nectargan.losses import read_loss_log
from nectargan.trainers import Pix2pixTrainer, load_checkpoint


def tiny_config(tmp_path, dataroot, epochs=1, epochs_decay=1, **visdom) -> dict:
    return tiny_training_config(
        tmp_path / "out",
        dataroot,
        "cli",
        dataloader={"synthetic": {"n": 40, "size": 32}},
        train={"epochs": epochs, "epochs_decay": epochs_decay},
        visualizer={"visdom": {"update_frequency": 3, **visdom}},
    )


# -- train ----------------------------------------------------------------------------------


def test_train_prints_dashboard_url_and_trains(tmp_path, dataroot, visdom_server, env_name, capsys):
    cfg = tiny_config(tmp_path, dataroot, enable=True, port=visdom_server.port, env_name=env_name)
    code = main(["train", "--config", str(write_config(tmp_path, cfg)), "--epochs-decay", "0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"dashboard: http://localhost:{visdom_server.port}/env/{env_name}" in out
    assert "experiment: " in out and "precision" in out
    assert "epoch 1/1" in err and "it/s" in err and "ETA" in err  # the progress bar
    exp = tmp_path / "out" / "cli_v1"
    assert (exp / "checkpoints" / "epoch_0001.pt").is_file()
    assert visdom_server.line_series("loss_G", env_name)


def test_flags_override_the_config(tmp_path, dataroot, capsys):
    cfg_path = write_config(tmp_path, tiny_config(tmp_path, dataroot))
    code = main(
        ["train", "--config", str(cfg_path), "--no-visdom", "--epochs", "1", "--epochs-decay", "0"]
        + ["--name", "flags", "--set", "save.num_examples=1", "--precision", "off"]
    )
    assert code == 0, capsys.readouterr().err
    exported = json.loads((tmp_path / "out" / "flags_v1" / "config.json").read_text())
    assert exported["save"]["num_examples"] == 1
    assert exported["train"]["mixed_precision"] == "off"
    assert "dashboard: off" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "train.generator.n_downs=7"], "crop_size: expected a multiple of 2**train"),
        (["--set", "train.epochz=3"], "train.epochz: unknown key"),
        (["--set", "noequals"], "--set expects KEY=VALUE"),
        (["--epochs", "-2"], "train.epochs: expected >= 0, got -2"),
        (["--precision", "fp16"], "'fp16' needs a CUDA device"),
    ],
)
def test_bad_settings_exit_2_with_a_clear_message(tmp_path, dataroot, capsys, args, message):
    import torch

    if "fp16" in args and torch.cuda.is_available():
        pytest.skip("fp16 is valid with CUDA")
    cfg_path = write_config(tmp_path, tiny_config(tmp_path, dataroot))
    assert main(["train", "--config", str(cfg_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_config_file_and_dataset(tmp_path, dataroot, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"train": {"epochs": "ten"}}')
    assert main(["train", "--config", str(bad)]) == 2
    assert "train.epochs: expected integer, got str 'ten'" in capsys.readouterr().err
    bad.write_text("{not json")
    assert main(["train", "--config", str(bad)]) == 2
    assert "not valid JSON at line 1" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    cfg_path = write_config(tmp_path, tiny_config(tmp_path, dataroot))
    assert main(["train", "--config", str(cfg_path), "--dataroot", str(tmp_path / "nope")]) == 2
    assert "dataloader.dataroot" in capsys.readouterr().err


# -- Ctrl-C on a real process ------------------------------------------------------------------


def test_sigint_leaves_checkpoint_and_complete_log(tmp_path, dataroot, visdom_server, env_name):
    cfg = tiny_config(
        tmp_path,
        dataroot,
        epochs=500,
        epochs_decay=0,
        enable=True,
        port=visdom_server.port,
        env_name=env_name,
    )
    cfg_path = write_config(tmp_path, cfg)
    exp = tmp_path / "out" / "cli_v1"
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nectargan", "train", "--config", str(cfg_path)],
            stdout=out,
            stderr=err,
        )
        try:
            wait_for(
                lambda: (exp / "checkpoints" / "epoch_0001.pt").exists() or proc.poll() is not None,
                60,
                what="first epoch checkpoint",
            )
            assert proc.poll() is None, (tmp_path / "stderr").read_text()
            time.sleep(0.3)  # somewhere inside a later epoch
            proc.send_signal(signal.SIGINT)
            sent = time.monotonic()
            code = proc.wait(timeout=30)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr = (tmp_path / "stderr").read_text()
    assert code == 130, stderr
    assert took < 15, f"exited {took:.1f}s after SIGINT"
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert f"resume with: nectargan train --resume {exp}" in stderr
    assert "thread still waiting" not in stderr

    state = load_checkpoint(exp / "checkpoints" / "interrupted.pt")
    assert state["interrupted"] and state["epoch"] >= 1
    steps_done = state["global_step"]
    log = read_loss_log(exp)  # valid JSON, every segment readable
    for name, cols in log["losses"].items():
        n = len(cols["step"])
        # every finished step is logged; a step cut short may have logged some of its losses
        assert n in (steps_done, steps_done + 1), (name, n, steps_done)
        assert cols["step"] == list(range(n))


# -- test -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_experiment(tmp_path_factory, dataroot):
    tmp = tmp_path_factory.mktemp("trained")
    trainer = Pix2pixTrainer(tiny_config(tmp, dataroot))
    trainer.fit()
    return trainer.experiment_dir


def test_test_command_writes_triplets_and_metrics(trained_experiment, capsys):
    assert main(["test", "--experiment", str(trained_experiment)]) == 0
    out = capsys.readouterr().out
    assert "test split, 4 images, after epoch 2" in out and "PSNR" in out and "SSIM" in out
    folder = trained_experiment / "test" / "epoch_0002"
    report = json.loads((folder / "metrics.json").read_text())
    assert set(report["metrics"]) == {"l1", "psnr", "ssim"}
    assert report["n_images"] == 4 and len(report["per_image"]) == 4
    assert len(list(folder.glob("*.png"))) == 4
    from PIL import Image

    with Image.open(next(folder.glob("*.png"))) as img:
        assert img.size == (3 * 32, 32)  # real_A | fake_B | real_B


def test_test_command_is_deterministic_and_picks_epochs(trained_experiment, tmp_path, capsys):
    args = ["test", "--experiment", str(trained_experiment), "--epoch", "1", "--no-images"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a["metrics"] == b["metrics"] and a["epoch"] == 1
    assert not list((tmp_path / "a").glob("*.png"))
    capsys.readouterr()
    assert main(["test", "--experiment", str(trained_experiment), "--epoch", "9"]) == 2
    assert "no checkpoint for epoch 9" in capsys.readouterr().err
    assert main(["test", "--experiment", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_test_command_output_and_experiment_that_are_files(trained_experiment, tmp_path, capsys):
    # Before: --out on a file was a FileExistsError traceback (exit 1), after the model had
    # loaded; --experiment on a file said "does not exist".
    plain = tmp_path / "plain"
    plain.write_text("x")
    args = ["test", "--experiment", str(trained_experiment), "--no-images"]
    assert main([*args, "--out", str(plain)]) == 2
    assert f"--out '{plain}' is a file; expected a folder" in capsys.readouterr().err
    assert main([*args, "--out", str(plain / "sub")]) == 2
    assert f"is inside '{plain}', which is a file" in capsys.readouterr().err
    assert main(["test", "--experiment", str(plain)]) == 2
    assert f"experiment directory '{plain}' is not a directory" in capsys.readouterr().err


# -- demo ---------------------------------------------------------------------------------------


def test_demo_generates_data_trains_and_summarises(tmp_path, capsys):
    cfg_path = write_config(tmp_path, tiny_config(tmp_path, None, epochs=1, epochs_decay=0))
    code = main(["demo", "--config", str(cfg_path), "--no-visdom"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "untrained" in out and "trained" in out and "SSIM" in out
    assert (tmp_path / "out" / "datasets").is_dir()  # synthetic data generated on the fly
    exp = tmp_path / "out" / "cli_v1"
    assert (exp / "test" / "epoch_0001" / "metrics.json").is_file()
    exported = json.loads((exp / "config.json").read_text())
    assert exported["dataloader"]["dataroot"].endswith("synthetic_n40_32px_seed0")


def test_resume_from_the_command_line(tmp_path, dataroot, capsys):
    cfg_path = write_config(tmp_path, tiny_config(tmp_path, dataroot, epochs=1, epochs_decay=0))
    assert main(["train", "--config", str(cfg_path)]) == 0
    exp = tmp_path / "out" / "cli_v1"
    capsys.readouterr()
    # no --config: the run's own config.json, with the flags on top
    assert main(["train", "--resume", str(exp), "--epochs-decay", "2"]) == 0
    out, err = capsys.readouterr()
    assert "resuming after epoch 1" in out
    assert "epoch 2/3" in err and "epoch 1/3" not in err
    state = load_checkpoint(exp / "checkpoints" / "epoch_0003.pt")
    assert state["epoch"] == 3 and state["global_step"] == 3 * 8
    assert not (tmp_path / "out" / "cli_v2").exists()
