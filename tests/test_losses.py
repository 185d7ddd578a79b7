"""Loss functions: shape checks, fixed-kernel edge losses, VGG19 weight loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nectargan.losses.losses import (
    LaplacianLoss,
    SobelLoss,
    VGGPerceptualLoss,
    bce_with_logits_loss,
    l1_loss,
    mse_loss,
)
from nectargan.losses.vgg import expected_shapes, vgg19_layer_names

SHALLOW = ["relu1_1", "relu2_1"]  # needs features.0, .2 and .5 only: a ~0.5 MB file


def _images(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, torch.rand(2, 3, 8, 8, generator=g) * 2 - 1


def write_vgg_weights(path: Path, depth: int = 6, **overrides: torch.Tensor) -> Path:
    """A tiny torchvision-style VGG19 state_dict with random weights of the right shapes."""
    g = torch.Generator().manual_seed(0)
    state = {
        f"features.{k}": torch.randn(shape, generator=g) * 0.1
        for k, shape in expected_shapes(depth).items()
    }
    state["classifier.0.weight"] = torch.zeros(2, 2)  # present in real files; must be ignored
    state.update(overrides)
    torch.save(state, path)
    return path


# -- basic losses ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn", [l1_loss, mse_loss, bce_with_logits_loss, SobelLoss(), LaplacianLoss()]
)
def test_mismatched_shapes_are_refused_not_broadcast(fn) -> None:
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 8\) != target shape \(2, 3, 8, 8\)"):
        fn(torch.zeros(2, 1, 8, 8), torch.zeros(2, 3, 8, 8))


def test_simple_losses_match_torch() -> None:
    x, y = _images()
    assert torch.equal(l1_loss(x, y), F.l1_loss(x, y))
    assert torch.equal(mse_loss(x, y), F.mse_loss(x, y))
    logits = torch.randn(2, 1, 4, 4)
    ones = torch.ones_like(logits)
    assert torch.allclose(
        bce_with_logits_loss(logits, ones), F.binary_cross_entropy_with_logits(logits, ones)
    )


@pytest.mark.parametrize("loss", [SobelLoss(), LaplacianLoss()])
def test_edge_losses_see_structure_not_brightness(loss) -> None:
    x, y = _images()
    assert loss(x, x).item() == 0.0
    flat_a, flat_b = torch.full((1, 3, 8, 8), -0.5), torch.full((1, 3, 8, 8), 0.5)
    assert loss(flat_a, flat_b).item() == pytest.approx(
        0.0, abs=1e-6
    )  # no edges anywhere, borders too
    assert loss(x, y).item() > 0.0
    x = x.clone().requires_grad_()
    loss(x, y).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_sobel_responds_to_a_vertical_edge() -> None:
    step = torch.zeros(1, 1, 6, 6)
    step[..., 3:] = 1.0
    assert SobelLoss()(step, torch.zeros_like(step)).item() > 0
    assert SobelLoss().filter(step).shape == (1, 2, 6, 6)  # two kernels, same size


# -- VGG19 ----------------------------------------------------------------------------


def test_expected_shapes_match_torchvision_vgg19() -> None:
    full = expected_shapes(len(vgg19_layer_names()))
    assert sum(torch.Size(s).numel() for s in full.values()) == 20_024_384  # vgg19.features
    assert full["34.weight"] == (512, 512, 3, 3) and full["0.weight"] == (64, 3, 3, 3)
    names = vgg19_layer_names()
    assert names.index("relu5_1") == 29 and names[-1] == "pool5" and len(names) == 37


def test_perceptual_loss_from_a_local_weights_file(tmp_path: Path) -> None:
    loss = VGGPerceptualLoss(write_vgg_weights(tmp_path / "vgg19.pth"), layers=SHALLOW)
    x, y = _images()
    assert loss(x, x).item() == 0.0
    x = x.clone().requires_grad_()
    value = loss(x, y)
    value.backward()
    assert value.item() > 0 and x.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.vgg.training  # stays a fixed instrument


def test_weights_load_without_prefix_or_in_a_wrapper(tmp_path: Path) -> None:
    bare = {k: torch.zeros(s) for k, s in expected_shapes(6).items()}
    torch.save({"state_dict": bare}, tmp_path / "w.pth")
    VGGPerceptualLoss(tmp_path / "w.pth", layers=SHALLOW)


def test_loaded_weights_are_used(tmp_path: Path) -> None:
    path = write_vgg_weights(tmp_path / "w.pth")
    loss = VGGPerceptualLoss(path, layers=["relu1_1"])
    saved = torch.load(path, weights_only=True)
    assert torch.equal(loss.vgg.features[0].weight, saved["features.0.weight"])


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            {"features.2.weight": torch.zeros(64, 64, 1, 1)},
            r"'features.2.weight' has shape \(64, 64, 1, 1\), expected \(64, 64, 3, 3\)",
        ),
        ({"features.5.bias": torch.zeros(7)}, r"'features.5.bias' has shape \(7,\)"),
    ],
)
def test_wrong_shapes_are_named(tmp_path: Path, overrides: dict, match: str) -> None:
    path = write_vgg_weights(tmp_path / "w.pth", **overrides)
    with pytest.raises(ValueError, match=match):
        VGGPerceptualLoss(path, layers=SHALLOW)


def test_missing_layers_and_bad_files_are_explained(tmp_path: Path) -> None:
    shallow = write_vgg_weights(tmp_path / "shallow.pth", depth=3)  # conv1_1, conv1_2 only
    with pytest.raises(ValueError, match=r"lack \['features.5.weight', 'features.5.bias'\]"):
        VGGPerceptualLoss(shallow, layers=SHALLOW)
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth"):
        VGGPerceptualLoss(tmp_path / "nope.pth", layers=SHALLOW)
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="could not read VGG19 weights"):
        VGGPerceptualLoss(tmp_path / "junk.pth", layers=SHALLOW)
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="hold a list"):
        VGGPerceptualLoss(tmp_path / "list.pth", layers=SHALLOW)


def test_bad_layer_choices(tmp_path: Path) -> None:
    path = write_vgg_weights(tmp_path / "w.pth")
    with pytest.raises(ValueError, match=r"unknown: \['relu9_9'\]"):
        VGGPerceptualLoss(path, layers=["relu9_9"])
    with pytest.raises(ValueError, match="duplicates"):
        VGGPerceptualLoss(path, layers=["relu1_1", "relu1_1"])
    with pytest.raises(ValueError, match="one weight per layer"):
        VGGPerceptualLoss(path, layers=SHALLOW, layer_weights=[1.0])
    loss = VGGPerceptualLoss(path, layers=SHALLOW)
    with pytest.raises(ValueError, match=r"\(N, 1 or 3, H, W\)"):
        loss(torch.zeros(1, 4, 8, 8), torch.zeros(1, 4, 8, 8))
