"""The pix2pix loss spec: subspecs, weights, config validation, VGG start-up checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nectargan.losses.loss_manager import LossManager
from nectargan.losses.pix2pix_objective import DEFAULTS, SUBSPECS, pix2pix
from nectargan.losses.vgg import expected_shapes
from nectargan.scheduling import Schedule

SHALLOW_VGG = ["relu1_1", "relu2_1"]


def write_vgg_weights(path: Path) -> Path:
    """Random weights shaped like torchvision's VGG19 features[:6] (enough for SHALLOW_VGG)."""
    g = torch.Generator().manual_seed(0)
    torch.save(
        {f"features.{k}": torch.randn(s, generator=g) * 0.1 for k, s in expected_shapes(6).items()},
        path,
    )
    return path


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 8, 8, generator=g) * 2 - 1, torch.rand(1, 3, 8, 8, generator=g) * 2 - 1


def test_subspecs_name_their_losses(tmp_path: Path) -> None:
    vgg = {"vgg_weights": write_vgg_weights(tmp_path / "vgg.pth"), "vgg_layers": SHALLOW_VGG}
    names = {s: list(pix2pix(vgg, s)) for s in SUBSPECS}
    assert names["basic"] == ["G_GAN", "G_L1", "D_real", "D_fake"]
    assert names["extended"] == ["G_GAN", "G_L1", "G_L2", "G_SOBEL", "G_LAP", "D_real", "D_fake"]
    assert names["basic+vgg"] == ["G_GAN", "G_L1", "G_VGG", "D_real", "D_fake"]
    assert names["extended+vgg"] == names["extended"][:5] + ["G_VGG", "D_real", "D_fake"]


def test_unknown_subspec_names_valid_ones() -> None:
    with pytest.raises(
        ValueError, match=r"'fancy'.*'basic', 'extended', 'basic\+vgg', 'extended\+vgg'"
    ):
        pix2pix({}, "fancy")


def test_lambda_100_really_multiplies_l1_by_100() -> None:
    lm = LossManager()
    lm.init_from_spec(pix2pix, {"lambda_l1": 100.0}, "basic")
    x, y = _pair()
    weighted = lm.compute_loss_xy("G_L1", x, y, epoch=0)
    assert weighted.item() == pytest.approx(100 * F.l1_loss(x, y).item(), rel=1e-6)


def test_every_loss_keeps_its_own_weight() -> None:
    lambdas = {
        "lambda_gan": 2.0,
        "lambda_l1": 100.0,
        "lambda_l2": 3.0,
        "lambda_sobel": 4.0,
        "lambda_laplacian": 5.0,
    }
    spec = pix2pix({**lambdas, "lambda_d": 0.25}, "extended")
    weights = {name: loss.weight for name, loss in spec.items()}
    assert weights == {
        "G_GAN": 2,
        "G_L1": 100,
        "G_L2": 3,
        "G_SOBEL": 4,
        "G_LAP": 5,
        "D_real": 0.25,
        "D_fake": 0.25,
    }
    lm = LossManager()
    lm.init_from_spec(lambda: spec)
    x, y = _pair()
    for name in ("G_L2", "G_SOBEL", "G_LAP"):
        raw = spec[name].function(x, y)
        assert lm.compute_loss_xy(name, x, y, 0).item() == pytest.approx(
            weights[name] * raw.item(), rel=1e-6
        )


def test_missing_keys_take_documented_defaults() -> None:
    spec = pix2pix(None, "extended")
    assert spec["G_L1"].weight == DEFAULTS["lambda_l1"] == 100.0
    assert spec["G_GAN"].weight == 1.0 and spec["D_real"].weight == 0.5
    assert pix2pix({"unrelated": "ignored"})["G_L1"].weight == 100.0


def test_gan_terms_are_bce_on_logits_and_tags_split_g_from_d() -> None:
    lm = LossManager()
    lm.init_from_spec(pix2pix, {}, "basic")
    logits = torch.tensor([[[[2.0, -1.0]]]])
    ones, zeros = torch.ones_like(logits), torch.zeros_like(logits)
    g_gan = lm.compute_loss_xy("G_GAN", logits, ones, 0)
    assert g_gan.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, ones).item())
    lm.compute_loss_xy("G_L1", *_pair(), 0)
    lm.compute_loss_xy("D_real", logits, ones, 0)
    lm.compute_loss_xy("D_fake", logits, zeros, 0)
    assert list(lm.get_loss_values(query=["G"])) == ["G_GAN", "G_L1"]
    assert list(lm.get_loss_values(query=["D"])) == ["D_real", "D_fake"]


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        ({"lambda_L1": 10}, ValueError, r"unknown loss config keys \['lambda_L1'\].*'lambda_l1'"),
        ({"lambda_l1": -1}, ValueError, r"'lambda_l1' must be a finite number >= 0, got -1"),
        ({"lambda_gan": "1"}, ValueError, r"'lambda_gan' .* got '1'"),
        ({"lambda_l2": float("nan")}, ValueError, "'lambda_l2'"),
        ({"lambda_sobel": True}, ValueError, "'lambda_sobel'"),
        ("basic", TypeError, "must be a mapping"),
    ],
)
def test_bad_config_values_are_named(config, error, match) -> None:
    with pytest.raises(error, match=match):
        pix2pix(config, "extended")


def test_vgg_subspec_without_weights_fails_at_start_up_saying_what_to_provide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: nothing found there
    for subspec in ("basic+vgg", "extended+vgg"):
        with pytest.raises(
            ValueError, match=r"need pretrained VGG19 weights.*vgg_weights to a local"
        ) as info:
            pix2pix({"vgg_weights": None}, subspec)
        assert "cannot be downloaded" in str(info.value)
        assert str(tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth") in str(info.value)


def test_vgg_subspec_with_missing_file_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        pix2pix({"vgg_weights": str(tmp_path / "missing.pth")}, "basic+vgg")


def test_vgg_subspec_with_a_local_file_computes_a_weighted_loss(tmp_path: Path) -> None:
    path = write_vgg_weights(tmp_path / "vgg.pth")
    spec = pix2pix(
        {"vgg_weights": str(path), "vgg_layers": SHALLOW_VGG, "lambda_vgg": 2.0}, "basic+vgg"
    )
    lm = LossManager()
    lm.init_from_spec(lambda: spec)
    x, y = _pair()
    raw = spec["G_VGG"].function(x, y).item()
    assert raw > 0
    assert lm.compute_loss_xy("G_VGG", x, y, 0).item() == pytest.approx(2.0 * raw, rel=1e-6)


def test_vgg_layers_must_be_a_list(tmp_path: Path) -> None:
    path = write_vgg_weights(tmp_path / "vgg.pth")
    with pytest.raises(ValueError, match="'vgg_layers' must be a list"):
        pix2pix({"vgg_weights": path, "vgg_layers": "relu1_1"}, "basic+vgg")


def test_schedules_from_config_replace_the_static_lambda() -> None:
    ramp = {"start_epoch": 0, "end_epoch": 10, "initial_value": 100.0, "target_value": 10.0}
    spec = pix2pix({"schedules": {"G_L1": ramp, "G_GAN": Schedule(0, 1, 0.0, 1.0)}}, "basic")
    assert isinstance(spec["G_L1"].schedule, Schedule) and spec["D_real"].schedule is None
    lm = LossManager()
    lm.init_from_spec(lambda: spec)
    assert lm.weight_at("G_L1", 5) == pytest.approx(55.0)
    assert lm.weight_at("G_GAN", 1) == 1.0


def test_schedules_for_unknown_losses_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown losses \['G_L2'\]"):
        pix2pix(
            {
                "schedules": {
                    "G_L2": {
                        "start_epoch": 0,
                        "end_epoch": 1,
                        "initial_value": 0,
                        "target_value": 1,
                    }
                }
            }
        )
    with pytest.raises(TypeError, match="schedule for loss 'G_L1'"):
        pix2pix({"schedules": {"G_L1": 3.0}})
