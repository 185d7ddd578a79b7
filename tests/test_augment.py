"""The fourteen augmentations: config refusals, which image each touches, shared geometry."""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from _support import textured_image
from PIL import Image

from nectargan.config import Config
from nectargan.config.augment_schema import (
    AUGMENTATIONS,
    GEOMETRIC,
    PHOTOMETRIC,
    AugmentConfig,
    parse_augment,
)
from nectargan.dataset.augment import PairedTransform
from nectargan.errors import ConfigUserError

SIDE = 32
LOAD = 40


def picture(seed: int, mode: str = "RGB") -> Image.Image:
    """Colourful, asymmetric and textured, so every op changes it visibly."""
    return textured_image(seed, LOAD, mode, step=6, noise=40)


def only(name: str, **params: Any) -> AugmentConfig:
    """Just ``name`` at p=1 (hflip off too), plus its parameters."""
    return AugmentConfig.model_validate({"hflip": {"p": 0}, name: {"p": 1, **params}})


def run(cfg: AugmentConfig, a: Image.Image, b: Image.Image, seed: int = 0):
    t = PairedTransform(LOAD, SIDE, cfg, train=True)
    return t(a, b, torch.Generator().manual_seed(seed))


BASE = AugmentConfig.model_validate({"hflip": {"p": 0}})


def test_there_are_fourteen() -> None:
    assert len(AUGMENTATIONS) == 14 == len(set(AUGMENTATIONS))
    assert set(AugmentConfig.model_fields) == {"random_crop", *AUGMENTATIONS}


@pytest.mark.parametrize(
    ("data", "key", "why"),
    [
        ({"rotate": {"p": 1.5}}, "dataloader.augment.rotate.p", "less than or equal to 1"),
        ({"noise": {"p": -1}}, "dataloader.augment.noise.p", "greater than or equal to 0"),
        ({"blur": {"p": float("nan")}}, "dataloader.augment.blur.p", "finite"),
        ({"gamma": {"gamma": [1.5, 0.5]}}, "dataloader.augment.gamma.gamma", "min > max"),
        ({"jpeg": {"quality": [0, 90]}}, "dataloader.augment.jpeg.quality", r"within \[1, 100\]"),
        ({"coarse_dropout": {"holes": [3, 1]}}, "dataloader.augment.coarse_dropout.holes", "min"),
        ({"rotate": {"degrees": [-10]}}, "dataloader.augment.rotate.degrees", ""),
        ({"sharpen": {"p": 1}}, "dataloader.augment.sharpen", "unknown augmentation"),
        ({"blur": {"radius": 2}}, "dataloader.augment.blur.radius", "unknown parameter.*sigma"),
        ({"noise": {"apply_to": "all"}}, "dataloader.augment.noise.apply_to", "input"),
        ({"elastic": {"sigma": 0}}, "dataloader.augment.elastic.sigma", "greater than 0"),
        (
            {"optical_distortion": {"mode": "lens"}},
            "dataloader.augment.optical_distortion.mode",
            "",
        ),
    ],
)
def test_bad_values_are_refused_naming_the_key(data: dict, key: str, why: str) -> None:
    escaped = re.escape(key)
    with pytest.raises(ConfigUserError, match=rf"{escaped}: .*{why}"):
        parse_augment(data)
    # The same refusal through the whole config, at config time.
    with pytest.raises(ValueError, match=escaped):
        Config({"dataloader": {"augment": data}})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigUserError) as info:
        parse_augment({"hflip": {"p": 2}, "blur": {"sigma": [3, 1]}, "x": {}})
    assert "3 problem(s)" in str(info.value)


def test_config_round_trips_through_json_lists() -> None:
    cfg = parse_augment({"rotate": {"p": 0.3, "degrees": [-5, 5]}})
    assert cfg.rotate.degrees == [-5.0, 5.0]
    assert AugmentConfig.from_any(cfg.to_dict()) == cfg
    merged = Config({"dataloader": {"augment": {"rotate": {"p": 0.3}}}})
    assert merged.dataloader.augment.rotate.p == 0.3
    assert merged.dataloader.augment.rotate.degrees == [-15.0, 15.0]


def test_defaults_are_pix2pix() -> None:
    cfg = AugmentConfig()
    assert cfg.random_crop and cfg.active() == ["hflip"] and cfg.hflip.p == 0.5
    assert AugmentConfig.off().active() == []
    assert AugmentConfig.all_on().active() == list(AUGMENTATIONS)


@pytest.mark.parametrize("name", GEOMETRIC)
def test_geometric_ops_move_input_and_target_identically(name: str) -> None:
    img = picture(1)
    x0, _ = run(BASE, img, img)
    changed = False
    for seed in range(3):
        x, y = run(only(name), img, img.copy(), seed)
        assert torch.equal(x, y), name
        changed |= not torch.equal(x, x0)
    assert changed, f"{name} at p=1 never changed the image"


def test_coarse_dropout_blanks_the_same_boxes_in_both() -> None:
    a, b = picture(2), picture(3)
    x, y = run(only("coarse_dropout", holes=[2, 2], hole_size=[0.3, 0.3]), a, b)
    x0, y0 = run(BASE, a, b)
    hole_x = (x == -1).all(dim=0) & (x0 != -1).any(dim=0)
    hole_y = (y == -1).all(dim=0) & (y0 != -1).any(dim=0)
    assert hole_x.sum() >= round(0.3 * SIDE) ** 2
    assert torch.equal(hole_x, hole_y)


@pytest.mark.parametrize("name", PHOTOMETRIC)
def test_photometric_ops_follow_apply_to(name: str) -> None:
    a, b = picture(4), picture(5)
    x0, y0 = run(BASE, a, b)
    x, y = run(only(name), a, b)  # default: the input only
    assert torch.equal(y, y0) and not torch.equal(x, x0), name
    x, y = run(only(name, apply_to="target"), a, b)
    assert torch.equal(x, x0) and not torch.equal(y, y0), name
    same = picture(6)
    x, y = run(only(name, apply_to="both"), same, same.copy())
    assert torch.equal(x, y), f"{name}: 'both' must use one draw for A and B"
    assert x.min() >= -1 and x.max() <= 1


def test_photometric_ops_never_move_the_geometry() -> None:
    a, b = picture(7), picture(8)
    geo = {"rotate": {"p": 1}, "elastic": {"p": 1}, "vflip": {"p": 0.5}, "coarse_dropout": {"p": 1}}
    photo = {name: {"p": 1} for name in PHOTOMETRIC}
    for seed in range(3):
        _, y0 = run(AugmentConfig.model_validate(geo), a, b, seed)
        _, y1 = run(AugmentConfig.model_validate({**geo, **photo}), a, b, seed)
        assert torch.equal(y0, y1)


def test_probability_is_honoured() -> None:
    img = picture(9)
    x0, _ = run(AugmentConfig.off(), img, img)  # centre crop: only grayscale varies
    cfg = AugmentConfig.model_validate(
        {"random_crop": False, "hflip": {"p": 0}, "grayscale": {"p": 0.3}}
    )
    fired = sum(not torch.equal(run(cfg, img, img, seed)[0], x0) for seed in range(200))
    assert 35 <= fired <= 85  # 60 expected; 5+ sigma either way


def test_ranges_are_honoured() -> None:
    img = picture(10)
    x_dark, _ = run(only("gamma", gamma=[3.0, 3.0]), img, img)
    x_light, _ = run(only("gamma", gamma=[0.3, 0.3]), img, img)
    x0, _ = run(BASE, img, img)
    assert x_dark.mean() < x0.mean() < x_light.mean()
    x, _ = run(only("rotate", degrees=[0, 0]), img, img)
    assert torch.allclose(x, x0, atol=1e-5)  # a zero-degree turn is the identity grid
    noisy, _ = run(only("noise", std=[0.1, 0.1]), img, img)
    assert 0.15 < (noisy - x0).std() < 0.25  # std 0.1 of the full range = 0.2 in [-1, 1]


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_all_fourteen_together_in_any_mode(mode: str) -> None:
    a, b = picture(11, mode), picture(12, mode)
    channels = len(mode)
    x, y = run(AugmentConfig.all_on(), a, b, seed=3)
    assert x.shape == y.shape == (channels, SIDE, SIDE)
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    again = run(AugmentConfig.all_on(), a, b, seed=3)
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])


def test_evaluation_ignores_augmentation() -> None:
    img = picture(13)
    t = PairedTransform(LOAD, SIDE, AugmentConfig.all_on(), train=False)
    x1, y1 = t(img, img)
    x2, _ = t(img, img)
    assert torch.equal(x1, x2) and torch.equal(x1, y1)


def test_upstream_augmentations_map_onto_ours() -> None:
    from nectargan.config.augment_schema import from_upstream

    upstream = {
        "both": {
            "h_flip_chance": 0.5,
            "colorjitter_chance": 0.2,
            "colorjitter_min_hue": -0.1,
            "coarse_dropout_chance": 0.1,
            "coarse_dropout_height_max": 0.3,
            "elastic_transform_chance": 0.0,
        },
        "input": {
            "colorjitter_chance": 0.0,
            "randgamma_chance": 0.4,
            "randgamma_min": 80.0,
            "randgamma_max": 120.0,
            "motionblur_chance": 0.1,
            "motionblur_limit": 9,
            "sharpen_chance": 0.3,
        },
        "target": {},
    }
    values, notes = from_upstream(upstream)
    nested: dict[str, dict] = {}
    for key, value in values.items():
        name, param = key.split(".")
        nested.setdefault(name, {})[param] = value
    cfg = AugmentConfig.model_validate(nested)
    assert cfg.hflip.p == 0.5 and cfg.coarse_dropout.hole_size == [0.1, 0.3]
    assert cfg.color_jitter.p == 0.2 and cfg.color_jitter.apply_to == "both"  # input's 0 kept off
    assert cfg.color_jitter.hue == [-0.1, 0.05]
    assert cfg.gamma.gamma == [0.8, 1.2] and cfg.gamma.apply_to == "input"
    assert cfg.motion_blur.kernel_limit == 9
    assert any("sharpen_chance" in line for line in notes)


def test_nan_inside_a_range_is_refused_naming_the_key() -> None:
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"dataloader\.augment\.rotate\.degrees"):
            Config({"dataloader": {"augment": {"rotate": {"degrees": [bad, 1.0]}}}})
