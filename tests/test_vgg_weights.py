"""The '+vgg' subspecs find torchvision's VGG19 file in torch's cache, or stop in one line.

Upstream NectarGAN users have ``vgg19-dcbb9e9d.pth`` where torchvision's
download left it (``<torch.hub.get_dir()>/checkpoints``). With
``train.loss.vgg_weights`` unset, training looks there; without it the run
stops before creating anything, saying where it looked.
"""

from __future__ import annotations

from pathlib import Path

import torch
from _support import tiny_training_config, write_config

from nectargan.cli.main import main
from nectargan.losses import read_loss_log

# torchvision's vgg19 "features": (index, out, in) of each 3x3 conv, pools in between.
VGG19_CONVS = [
    (0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128),
    (10, 256, 128), (12, 256, 256), (14, 256, 256), (16, 256, 256),
    (19, 512, 256), (21, 512, 512), (23, 512, 512), (25, 512, 512),
    (28, 512, 512), (30, 512, 512), (32, 512, 512), (34, 512, 512),
]  # fmt: skip
VGG19_CLASSIFIER = [(0, 4096, 25088), (3, 4096, 4096), (6, 1000, 4096)]


def constant(value: float, *shape: int) -> torch.Tensor:
    """Full-size shape, one stored number: the file stays tiny, loading sees the real shapes."""
    return torch.full((1,), value).expand(*shape)


def write_torchvision_vgg19(path: Path) -> Path:
    """A file laid out like torchvision's vgg19-dcbb9e9d.pth (keys and shapes), fake values."""
    state = {}
    for index, out_ch, in_ch in VGG19_CONVS:
        state[f"features.{index}.weight"] = constant(1.0 / (9 * in_ch), out_ch, in_ch, 3, 3)
        state[f"features.{index}.bias"] = constant(0.01, out_ch)
    for index, out_f, in_f in VGG19_CLASSIFIER:
        state[f"classifier.{index}.weight"] = constant(0.0, out_f, in_f)
        state[f"classifier.{index}.bias"] = constant(0.0, out_f)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def vgg_run(tmp_path: Path, dataroot: Path) -> list[str]:
    cfg = tiny_training_config(tmp_path / "out", dataroot, "vgg", train={"epochs_decay": 0})
    return ["train", "--config", str(write_config(tmp_path, cfg)), "--no-visdom"] + [
        "--set",
        "train.loss.subspec=basic+vgg",
    ]


def test_without_weights_one_line_exit_2_and_no_experiment_folder(
    tmp_path, dataroot, monkeypatch, capsys
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache
    assert main(vgg_run(tmp_path, dataroot)) == 2
    err = capsys.readouterr().err.strip()
    looked = tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert err.startswith("nectargan train: error: train.loss.vgg_weights: not set"), err
    assert str(looked) in err and "Traceback" not in err and "internal error" not in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_named_file_that_is_missing_is_one_line_too(tmp_path, dataroot, capsys):
    missing = tmp_path / "nowhere" / "vgg19.pth"
    args = vgg_run(tmp_path, dataroot) + ["--set", f"train.loss.vgg_weights={missing}"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert str(missing) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_weights_in_torchs_cache_are_found_and_trained_with(
    tmp_path, dataroot, monkeypatch, capsys
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    write_torchvision_vgg19(tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth")
    shallow = ["--set", 'train.loss.vgg_layers=["relu1_1", "relu2_1"]']  # seconds, not a minute
    code = main(vgg_run(tmp_path, dataroot) + shallow)
    assert code == 0, capsys.readouterr().err
    losses = read_loss_log(tmp_path / "out" / "vgg_v1")["losses"]
    assert losses["G_VGG"]["raw"] and all(v > 0 for v in losses["G_VGG"]["raw"])
