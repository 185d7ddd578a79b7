"""Config loading: defaults fill gaps, every bad key is reported at once."""

from __future__ import annotations

import json

import pytest

from nectargan.config import Config, ConfigError, default_config_dict


def test_defaults_load_and_read_by_attribute():
    cfg = Config.load(None)
    assert cfg.train.generator.n_downs == 8
    assert cfg.visualizer.visdom.port == 8097
    assert cfg["dataloader"]["crop_size"] == 256
    assert cfg.to_dict() == default_config_dict()


def test_missing_keys_are_filled_from_defaults(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"train": {"epochs": 3}}))
    cfg = Config.load(path)
    assert cfg.train.epochs == 3
    assert cfg.train.epochs_decay == default_config_dict()["train"]["epochs_decay"]


def test_every_problem_is_listed_with_expected_and_got():
    bad = {
        "trian": {},
        "train": {"epochs": "ten", "lr_initial": -1, "generator": {"block_type": "fancy"}},
        "dataloader": {"direction": "AtoC", "batch_size": True},
        "visualizer": {"visdom": {"port": 70000, "colour": "red"}},
    }
    with pytest.raises(ConfigError) as err:
        Config.load(bad)
    msg = str(err.value)
    assert len(err.value.problems) == 8, err.value.problems
    for needle in (
        "trian: unknown key",
        "train.epochs: expected integer, got str 'ten'",
        "train.lr_initial: expected >= 0, got -1",
        "train.generator.block_type: expected one of ['plain', 'residual'], got 'fancy'",
        "dataloader.direction: expected one of ['AtoB', 'BtoA'], got 'AtoC'",
        "dataloader.batch_size: expected integer, got bool True",
        "visualizer.visdom.port: expected <= 65535, got 70000",
    ):
        assert needle in msg


def test_unknown_nested_key_names_its_path():
    with pytest.raises(ConfigError, match=r"visualizer\.visdom\.colour: unknown key"):
        Config.load({"visualizer": {"visdom": {"colour": "red"}}})


def test_crop_size_must_fit_generator_depth():
    with pytest.raises(ConfigError, match="multiple of 2\\*\\*train.generator.n_downs = 32"):
        Config.load(
            {
                "dataloader": {"load_size": 64, "crop_size": 48},
                "train": {"generator": {"n_downs": 5}},
            }
        )


def test_integers_accepted_where_floats_are_default_and_null_where_allowed():
    cfg = Config.load({"train": {"lr_initial": 1, "loss": {"vgg_weights": None}}})
    assert cfg.train.lr_initial == 1


def test_bad_json_file_names_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"train": {"epochs": 3,}}')
    with pytest.raises(ConfigError, match="line 1"):
        Config.load(path)


def test_export_round_trips(tmp_path):
    cfg = Config.load({"train": {"epochs": 2}})
    out = cfg.export(tmp_path / "config.json")
    assert Config.load(out).to_dict() == cfg.to_dict()


def test_overrides_are_validated():
    cfg = Config.load(None).with_overrides({"train.epochs": 5})
    assert cfg.train.epochs == 5
    with pytest.raises(ConfigError, match="train.epochs"):
        cfg.with_overrides({"train.epochs": -2})


def test_config_is_read_only():
    cfg = Config.load(None)
    with pytest.raises(AttributeError):
        cfg.train = 3
    with pytest.raises(TypeError):
        Config.load(42)
