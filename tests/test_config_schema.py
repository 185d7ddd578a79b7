"""The config schema: generated files stay in step, values that would break a run are refused
at validation (each naming its key), and the keys the code has are reachable."""

from __future__ import annotations

import copy
import json
import pickle
import re
from collections.abc import Mapping
from typing import get_args, get_origin

import pytest
import torch
from _support import tiny_training_config

from nectargan.config import Config, ConfigError, NectarConfig, generate, schema
from nectargan.config.section import Section
from nectargan.errors import ConfigUserError
from nectargan.losses import pix2pix
from nectargan.models.unet import BLOCK_TYPES, UPSAMPLE_MODES
from nectargan.trainers.builders import build_adam
from nectargan.trainers.precision import MODES
from nectargan.visualizer.visdom.images import check_image_size


def _float_keys(model: type[Section] = NectarConfig, prefix: str = "") -> list[str]:
    """Every key whose value is a number (float), walking nested sections."""
    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, Section):
            keys += _float_keys(ann, f"{prefix}{name}.")
        elif float in (ann, *get_args(ann)) and get_origin(ann) is not list:  # ranges: lists
            keys.append(f"{prefix}{name}")
    return keys


# -- generated files ------------------------------------------------------------------------


def test_default_json_and_config_doc_are_generated_from_the_schema():
    assert generate.stale() == [], "run: python -m nectargan.config.generate"
    assert json.loads(generate.DEFAULT_JSON.read_text()) == Config.load(None).to_dict()


def test_config_doc_lists_every_key_with_its_description():
    doc = generate.render_config_doc()
    flat = _flat(Config.load(None).to_dict())
    for key in flat:
        assert f"`{key}`" in doc, key
    assert "Weight of D_real and of D_fake" in doc and ">= 1, <= 2048" in doc


def _flat(data: Mapping, prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def test_packaged_demo_config_validates():
    from nectargan.cli.train_cmd import packaged_config_path

    assert Config.load(packaged_config_path("demo")).train.generator.n_downs == 6


def test_choice_lists_come_from_the_schema():
    from nectargan.cli.main import build_parser

    assert get_args(schema.PrecisionMode) == MODES
    assert get_args(schema.LossSubspec) == schema.LOSS_SUBSPECS
    # the models keep their own lists (they do not import the config); they must agree
    assert get_args(schema.BlockType) == BLOCK_TYPES
    assert get_args(schema.Upsample) == UPSAMPLE_MODES
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    precision = next(a for a in train._actions if a.dest == "precision")
    assert tuple(precision.choices) == MODES


# -- typed, Mapping-like access --------------------------------------------------------------


def test_sections_are_typed_models_that_also_read_as_mappings():
    cfg = Config.load(None)
    assert isinstance(cfg.model, NectarConfig)
    assert isinstance(cfg.train.generator, schema.GeneratorConfig)
    assert cfg.train.generator.features == cfg["train"]["generator"]["features"] == 64
    dl = cfg.dataloader
    assert isinstance(dl, Mapping) and "augment" in dl and len(dl) == len(dl.keys())
    assert dict(dl.synthetic.items()) == {"n": 400, "size": 64, "seed": 0}
    assert dl.get("nope", 1) == 1
    with pytest.raises(KeyError):
        dl["nope"]
    with pytest.raises(AttributeError):
        cfg.train = 3  # type: ignore[misc]
    with pytest.raises(Exception, match="frozen"):
        cfg.train.epochs = 3  # type: ignore[misc]


def test_config_pickles_and_copies():
    cfg = Config.load({"train": {"epochs": 3}})
    assert pickle.loads(pickle.dumps(cfg)) == cfg == copy.deepcopy(cfg)
    assert pickle.loads(pickle.dumps(cfg.train)).epochs == 3


def test_config_error_is_a_user_error():
    assert issubclass(ConfigError, ConfigUserError)


# -- refusals (issue 11, items 12-16) --------------------------------------------------------


@pytest.mark.parametrize("key", _float_keys())
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_refused_for_every_number(key, value):
    with pytest.raises(ConfigError, match=rf"{key}: expected a finite number, got -?(nan|inf)"):
        Config.load(None).with_overrides({key: value})


def test_a_path_through_a_value_is_a_clear_error_with_the_other_problems():
    with pytest.raises(ConfigError) as err:
        Config.load(None).with_overrides({"train.epochs.x": 1, "train.beta1": 1})
    assert err.value.problems == [
        "train.epochs.x: train.epochs is a value (100), not a section with keys; "
        "set it as train.epochs=VALUE",
        "train.beta1: expected < 1, got 1",
    ]


def test_an_object_override_merges_into_its_section():
    from nectargan.cli.train_cmd import packaged_config_path

    demo = Config.load(packaged_config_path("demo"))
    merged = demo.with_overrides({"train.generator": {"features": 8}})
    assert merged.train.generator.features == 8
    assert merged.train.generator.n_downs == demo.train.generator.n_downs == 6  # not the default 8
    deeper = demo.with_overrides({"train": {"loss": {"lambda_l1": 50}}})
    assert deeper.train.loss.lambda_l1 == 50 and deeper.train.loss.lambda_gan == 1.0
    assert deeper.train.epochs == demo.train.epochs == 5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dataloader.dataroot": ""}, "dataloader.dataroot: expected a dataset directory or null"),
        ({"common.output_directory": " "}, "common.output_directory: expected a directory path"),
        (
            {"train.epochs": 0, "train.epochs_decay": 0},
            "train.epochs: expected train.epochs + train.epochs_decay >= 1",
        ),
        ({"train.beta1": 1.0}, "train.beta1: expected < 1, got 1.0"),
        ({"common.device": "gpu"}, "common.device: expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ({"common.experiment_name": "../x"}, "common.experiment_name: expected ASCII letters"),
        ({"train.channels_last": 1}, "train.channels_last: expected one of ['auto', True, False]"),
        ({"dataloader.channels": True}, "dataloader.channels: expected one of [1, 3], got True"),
        ({"dataloader.pin_memory": "x"}, "dataloader.pin_memory: expected one of"),
        ({"train.loss.vgg_layers": []}, "train.loss.vgg_layers: expected a non-empty list"),
        ({"train.loss.vgg_layers": ["relu1_1", 3]}, "vgg_layers[1]: expected string, got int 3"),
        ({"train.generator": 3}, "train.generator: expected object, got int 3"),
        ({"train.loss.schedules": {"G_X": {}}}, "schedules.G_X: unknown key (valid here: G_GAN"),
        (
            {
                "train.loss.schedules.G_L1": {
                    "start_epoch": 2,
                    "end_epoch": 1,
                    "initial_value": 1,
                    "target_value": 0,
                }
            },
            "train.loss.schedules.G_L1: end_epoch (1.0) must be >= start_epoch (2.0)",
        ),
        (
            {"train.loss.schedules.G_L1": {"start_epoch": 0}},
            "train.loss.schedules.G_L1.end_epoch: missing",
        ),
    ],
)
def test_values_that_would_break_the_run_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config.load(None).with_overrides(overrides)


@pytest.mark.parametrize("size", [0, 1, 300, 2048, 2049, 5000, -3])
def test_image_size_accepts_exactly_what_the_visualizer_accepts(size):
    try:
        check_image_size(size)
        visualizer_ok = True
    except (TypeError, ValueError):
        visualizer_ok = False
    try:
        Config.load({"visualizer": {"visdom": {"image_size": size}}})
        config_ok = True
    except ConfigError:
        config_ok = False
    assert config_ok == visualizer_ok


def test_one_line_per_key_even_when_a_union_fails_several_ways():
    with pytest.raises(ConfigError) as err:
        Config.load({"train": {"optimizers": {"generator": {"beta1": "x", "lr_initial": -1}}}})
    assert err.value.problems == [
        "train.optimizers.generator.lr_initial: expected >= 0, got -1",
        "train.optimizers.generator.beta1: expected number or null, got str 'x'",
    ]


# -- keys the code had but the config could not reach ----------------------------------------


def test_loss_settings_reach_the_objective():
    cfg = Config.load(
        {
            "train": {
                "loss": {
                    "lambda_d": 0.25,
                    "schedules": {
                        "G_L1": {
                            "start_epoch": 0,
                            "end_epoch": 4,
                            "initial_value": 100,
                            "target_value": 10,
                            "kind": "exponential",
                        }
                    },
                }
            }
        }
    )
    spec = pix2pix(cfg.train.loss.to_dict(), cfg.train.loss.subspec)
    assert spec["D_real"].weight == spec["D_fake"].weight == 0.25
    assert spec["G_L1"].schedule(2) == pytest.approx(100 * (10 / 100) ** 0.5)


def test_separate_optimizer_settings_per_network():
    cfg = Config.load(
        {
            "train": {
                "lr_initial": 1e-3,
                "optimizers": {"discriminator": {"lr_initial": 1e-4, "beta1": 0.9}},
            }
        }
    )
    g, d = cfg.train.optimizer_for("generator"), cfg.train.optimizer_for("discriminator")
    assert (g.lr_initial, g.beta1, d.lr_initial, d.beta1) == (1e-3, 0.5, 1e-4, 0.9)
    assert d.epochs == g.epochs == 100
    net = torch.nn.Linear(2, 2)
    opt = build_adam(net, cfg, "discriminator")
    assert opt.param_groups[0]["lr"] == 1e-4 and opt.param_groups[0]["betas"] == (0.9, 0.999)


def test_trainer_builds_each_network_with_its_own_schedule(tmp_path, dataroot):
    from nectargan.trainers import Pix2pixTrainer

    cfg = tiny_training_config(
        tmp_path,
        dataroot,
        "sep",
        train={
            "epochs": 2,
            "epochs_decay": 2,
            "optimizers": {"discriminator": {"lr_initial": 1e-4, "epochs": 0, "epochs_decay": 4}},
        },
    )
    trainer = Pix2pixTrainer(cfg)
    assert trainer.learning_rates() == {"G": pytest.approx(2e-4), "D": pytest.approx(1e-4 * 4 / 5)}
    trainer.sched_G.step()
    trainer.sched_D.step()
    assert trainer.learning_rates() == {"G": pytest.approx(2e-4), "D": pytest.approx(1e-4 * 3 / 5)}
