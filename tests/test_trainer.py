"""End-to-end training on tiny images: dashboard, checkpoints, resume, interruption, learning."""

from __future__ import annotations

import json
import threading
import warnings

import pytest
import torch
from _support import deep_update, free_port, tiny_training_config

from nectargan.config import ConfigError
from nectargan.dataset import ImageReadError, generate_synthetic_dataset
from nectargan.losses import read_loss_log
from nectargan.trainers import Pix2pixTrainer, load_checkpoint
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.evaluate import eval_dataset, evaluate_generator, untrained_baseline
from nectargan.trainers.resume.choose import find_checkpoint

BATCHES = 8  # 32 training pairs / batch 4
UPDATE_FREQUENCY = 3  # display at idx 0, 3, 6


def tiny_config(tmp_path, dataroot, **sections) -> dict:
    cfg = tiny_training_config(
        tmp_path / "out",
        dataroot,
        "tiny",
        visualizer={"visdom": {"update_frequency": UPDATE_FREQUENCY}},
    )
    for section, values in sections.items():
        deep_update(cfg.setdefault(section, {}), values)
    return cfg


def _visdom_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("nectargan-visdom")]


def _log_steps(experiment_dir) -> dict[str, list[int]]:
    return {name: cols["step"] for name, cols in read_loss_log(experiment_dir)["losses"].items()}


# -- a full run with the dashboard ------------------------------------------------------------


def test_two_epochs_with_dashboard(tmp_path, dataroot, visdom_server, env_name):
    cfg = tiny_config(
        tmp_path,
        dataroot,
        visualizer={"visdom": {"enable": True, "port": visdom_server.port, "env_name": env_name}},
    )
    trainer = Pix2pixTrainer(cfg)
    assert trainer.dashboard_url == f"http://localhost:{visdom_server.port}/env/{env_name}"
    assert trainer.experiment_dir.name == "tiny_v1"
    trainer.fit()
    assert not trainer.vis.is_threaded and not _visdom_threads()

    # one point per display step, at x = epoch + idx / batches
    expected_x = [e + i / BATCHES for e in range(2) for i in range(0, BATCHES, UPDATE_FREQUENCY)]
    g = visdom_server.line_series("loss_G", env_name)
    d = visdom_server.line_series("loss_D", env_name)
    assert set(g) == {"G_GAN", "G_L1"} and set(d) == {"D_real", "D_fake"}
    for xs, ys in [*g.values(), *d.values()]:
        assert xs == pytest.approx(expected_x)
        assert len(ys) == len(expected_x)
    grid = visdom_server.window("comparison_grid", env_name)
    assert grid is not None

    exp = trainer.experiment_dir
    assert json.loads((exp / "config.json").read_text())["train"]["epochs"] == 1
    assert sorted(p.name for p in (exp / "checkpoints").glob("*.pt")) == [
        "best.pt",  # the epoch with the best val L1 (docs/validation.md)
        "epoch_0001.pt",
        "epoch_0002.pt",
    ]
    assert len(list((exp / "examples").glob("epoch_0002_*.png"))) == 2
    steps = _log_steps(exp)
    assert set(steps) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    assert all(s == list(range(2 * BATCHES)) for s in steps.values())


def test_second_run_gets_next_version(tmp_path, dataroot):
    cfg = tiny_config(tmp_path, dataroot)
    first = Pix2pixTrainer(cfg).experiment_dir
    second = Pix2pixTrainer(cfg).experiment_dir
    assert (first.name, second.name) == ("tiny_v1", "tiny_v2")


def test_hooks_can_be_passed_as_callables_with_kwargs(tmp_path, dataroot):
    trainer = Pix2pixTrainer(tiny_config(tmp_path, dataroot), quicksetup=False)
    calls = []
    trainer.train_paired(
        0,
        on_epoch_start=lambda **kw: calls.append(("start", kw)),
        train_step=lambda x, y, idx, **kw: calls.append(("step", idx, tuple(x.shape), kw)),
        on_epoch_end=lambda **kw: calls.append(("end", kw)),
        callback_kwargs={"train_step": {"alpha": 0.5}, "on_epoch_end": {"tag": "e0"}},
    )
    assert calls[0] == ("start", {})
    assert calls[1] == ("step", 0, (4, 3, 32, 32), {"alpha": 0.5})
    assert len(calls) == 2 + BATCHES and calls[-1] == ("end", {"tag": "e0"})
    assert trainer.experiment_dir is None and trainer.epochs_completed == 1


# -- resume ------------------------------------------------------------------------------------


def test_resume_continues_epochs_lr_and_loss_log(tmp_path, dataroot):
    cfg = tiny_config(tmp_path, dataroot, train={"epochs": 1, "epochs_decay": 3})
    reference = Pix2pixTrainer(tiny_config(tmp_path / "ref", dataroot, train=cfg["train"]))
    lrs = []
    for epoch in range(4):
        lrs.append(reference.learning_rates()["G"])
        reference.train_paired(epoch)

    first = Pix2pixTrainer(cfg)
    first.train_paired(0)
    first.train_paired(1)
    exp = first.experiment_dir

    resumed = Pix2pixTrainer(
        {**cfg, "train": {**cfg["train"], "resume": {"enable": True, "experiment_dir": str(exp)}}}
    )
    assert resumed.experiment_dir == exp
    assert resumed.epochs_completed == 2 and resumed.global_step == 2 * BATCHES
    assert resumed.learning_rates() == {"G": pytest.approx(lrs[2]), "D": pytest.approx(lrs[2])}
    assert torch.equal(
        resumed.gen.state_dict()["downs.0.0.weight"], first.gen.state_dict()["downs.0.0.weight"]
    )
    seen_epochs = []
    resumed.step_observers.append(lambda t, idx: seen_epochs.append(t.current_epoch))
    resumed.fit()
    assert sorted(set(seen_epochs)) == [2, 3]
    assert resumed.learning_rates()["G"] == pytest.approx(0.0)

    steps = _log_steps(exp)
    assert all(s == list(range(4 * BATCHES)) for s in steps.values())
    log = read_loss_log(exp)
    epochs = log["losses"]["G_L1"]["epoch"]
    assert epochs == sorted(epochs) and epochs[-1] > 3 and len(log["runs"]) == 2
    assert (exp / "config.resume1.json").is_file()
    state = load_checkpoint(find_checkpoint(exp))
    assert state["epoch"] == 4 and state["global_step"] == 4 * BATCHES


def test_resume_from_a_chosen_epoch_and_bad_resume_dirs(tmp_path, dataroot):
    cfg = tiny_config(tmp_path, dataroot)
    trainer = Pix2pixTrainer(cfg)
    trainer.fit()
    resume = {"enable": True, "experiment_dir": str(trainer.experiment_dir), "epoch": 1}
    again = Pix2pixTrainer({**cfg, "train": {**cfg["train"], "resume": resume}})
    assert again.epochs_completed == 1
    with pytest.raises(ckpt.CheckpointError, match=r"epoch 7 .*epochs with checkpoints: 1, 2"):
        Pix2pixTrainer({**cfg, "train": {**cfg["train"], "resume": {**resume, "epoch": 7}}})
    missing = {"enable": True, "experiment_dir": str(tmp_path / "nope")}
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        Pix2pixTrainer({**cfg, "train": {**cfg["train"], "resume": missing}})
    bigger = tiny_config(
        tmp_path, dataroot, train={"generator": {"features": 16}, "resume": resume}
    )
    with pytest.raises(
        ckpt.CheckpointError,
        match=r"different networks than this config \(train.generator.features: checkpoint 8, "
        r"config 16\)",
    ):
        Pix2pixTrainer(bigger)


# -- interruption --------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interruption_saves_state_stops_thread_and_propagates(
    tmp_path, dataroot, visdom_server, env_name, error
):
    cfg = tiny_config(
        tmp_path,
        dataroot,
        visualizer={"visdom": {"enable": True, "port": visdom_server.port, "env_name": env_name}},
    )
    trainer = Pix2pixTrainer(cfg)
    trainer.train_paired(0)

    def step(x, y, idx):
        if idx == 5:
            raise error("stop here")
        trainer.train_step(x, y, idx)

    with pytest.raises(error, match="stop here"):
        trainer.train_paired(1, train_step=step)
    assert not trainer.vis.is_threaded and not _visdom_threads()
    exp = trainer.experiment_dir
    state = load_checkpoint(exp / "checkpoints" / "interrupted.pt")
    assert state["interrupted"] and state["epoch"] == 1
    assert state["global_step"] == BATCHES + 5
    steps = _log_steps(exp)
    assert all(s == list(range(BATCHES + 5)) for s in steps.values())
    # the points displayed before the interruption reached the dashboard
    g = visdom_server.line_series("loss_G", env_name)
    assert g["G_L1"][0] == pytest.approx([0, 3 / 8, 6 / 8, 1, 1 + 3 / 8])


# -- dashboard missing -----------------------------------------------------------------------------


def test_training_without_a_server_warns_and_continues(tmp_path, dataroot, capsys):
    port = free_port()
    cfg = tiny_config(
        tmp_path,
        dataroot,
        train={"epochs": 1, "epochs_decay": 0},
        visualizer={"visdom": {"enable": True, "port": port, "autostart": False}},
    )
    trainer = Pix2pixTrainer(cfg)
    assert trainer.vis is None and trainer.dashboard_url is None
    assert "dashboard disabled" in capsys.readouterr().err
    trainer.fit()
    assert trainer.epochs_completed == 1


def test_autostart_launches_a_managed_local_server(tmp_path, dataroot):
    from nectargan.visualizer.visdom import server

    port = free_port()
    cfg = tiny_config(
        tmp_path,
        dataroot,
        visualizer={"visdom": {"enable": True, "port": port, "autostart": True}},
    )
    try:
        trainer = Pix2pixTrainer(cfg)
        assert trainer.vis is not None
        assert trainer.dashboard_url == f"http://localhost:{port}/env/main"
        assert server.probe("127.0.0.1", port) == "visdom"
    finally:
        server.stop(port)


# -- learning, precision ----------------------------------------------------------------------------


def test_bf16_training_learns_the_synthetic_task(tmp_path_factory, tmp_path):
    """Test-split L1 after a short bf16 training is clearly below an untrained generator's."""
    data = generate_synthetic_dataset(tmp_path_factory.mktemp("learn") / "d", n=160, size=32)
    cfg = tiny_config(
        tmp_path,
        data,
        dataloader={"batch_size": 8},
        train={
            "epochs": 3,
            "epochs_decay": 2,
            "mixed_precision": "bf16",
            "generator": {"features": 16},
        },
        save={"model_save_rate": 0, "example_save_rate": 0},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = Pix2pixTrainer(cfg)
        assert trainer.precision.dtype is torch.bfloat16
        trainer.fit()
    assert not [w for w in caught if "cuda" in str(w.message).lower()]
    test_set = eval_dataset(trainer.config, "test")
    trained = evaluate_generator(trainer.gen, test_set)["metrics"]
    untrained = untrained_baseline(trainer.config, test_set)
    assert trained["l1"] < 0.6 * untrained["l1"], (trained, untrained)
    assert trained["psnr"] > untrained["psnr"] + 3


def test_fp32_channels_first_path_runs(tmp_path, dataroot):
    cfg = tiny_config(
        tmp_path,
        dataroot,
        train={"mixed_precision": "off", "channels_last": False, "epochs_decay": 0},
    )
    trainer = Pix2pixTrainer(cfg)
    assert trainer.precision.dtype is None and trainer.memory_format == torch.contiguous_format
    trainer.fit()
    assert all(torch.isfinite(p).all() for p in trainer.gen.parameters())


# -- bad input -----------------------------------------------------------------------------------------


def test_bad_config_names_key_and_expectation(tmp_path, dataroot):
    with pytest.raises(ConfigError, match=r"train\.epochs: expected >= 0, got -1"):
        Pix2pixTrainer(tiny_config(tmp_path, dataroot, train={"epochs": -1}))
    with pytest.raises(ConfigError, match=r"crop_size: expected a multiple of 2\*\*train"):
        Pix2pixTrainer(tiny_config(tmp_path, dataroot, train={"generator": {"n_downs": 6}}))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"'fp16' needs a CUDA device"):
            Pix2pixTrainer(tiny_config(tmp_path, dataroot, train={"mixed_precision": "fp16"}))
    with pytest.raises(ValueError, match=r"unknown pix2pix loss subspec 'fancy'"):
        Pix2pixTrainer(tiny_config(tmp_path, dataroot), loss_subspec="fancy")


def test_missing_dataset_and_split(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"dataloader.dataroot: .*nowhere.* is not a directory"
    ):
        Pix2pixTrainer(tiny_config(tmp_path, tmp_path / "nowhere"))
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"no image files in .*empty/train"):
        Pix2pixTrainer(tiny_config(tmp_path, tmp_path / "empty"))
    (tmp_path / "flat").mkdir()
    with pytest.raises(FileNotFoundError, match=r"split folder .*flat/train.* not found"):
        Pix2pixTrainer(tiny_config(tmp_path, tmp_path / "flat"))
    assert not (tmp_path / "out").exists()  # no experiment dir for a run that cannot start


def test_corrupt_images_are_named(tmp_path):
    data = generate_synthetic_dataset(tmp_path / "d", n=40, size=32)
    first = sorted((data / "train").glob("*.png"))[0]
    first.write_bytes(b"not a png")
    with pytest.raises(ImageReadError, match=first.name):
        Pix2pixTrainer(tiny_config(tmp_path, data))

    data2 = generate_synthetic_dataset(tmp_path / "d2", n=40, size=32)
    later = sorted((data2 / "train").glob("*.png"))[-1]
    later.write_bytes(b"not a png either")
    trainer = Pix2pixTrainer(tiny_config(tmp_path, data2))
    with pytest.raises(ImageReadError, match=later.name):
        trainer.fit()
    assert (trainer.experiment_dir / "checkpoints" / "interrupted.pt").is_file()
