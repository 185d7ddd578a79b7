"""``nectargan config show | check | schema | import`` and the config refusals of ``train``."""

from __future__ import annotations

import json

import pytest

from nectargan.cli.main import main
from nectargan.config import Config, NectarConfig

# An upstream NectarGAN config in its {"config": {...}} layout (written for this test).
UPSTREAM = {
    "config": {
        "config_type": "pix2pix",
        "common": {
            "device": "cuda",
            "gpu_ids": [0],
            "cudnn": {"benchmark": True},
            "output_directory": "",
            "experiment_name": "facades",
            "experiment_version": 3,
        },
        "dataloader": {
            "dataroot": "data/facades",
            "direction": "BtoA",
            "batch_size": 4,
            "num_workers": 2,
            "load": {"input_nc": 3, "load_size": 286, "crop_size": 256},
            "masking": {"enable": False},
            "augmentations": {
                "both": {"h_flip_chance": 0.5, "v_flip_chance": 0.0, "rot90_chance": 0.25},
                "input": {"colorjitter_chance": 0.0, "grayscale_chance": 0.1},
            },
        },
        "train": {
            "separate_lr_schedules": True,
            "load": {"continue_train": False, "load_epoch": 1},
            "generator": {
                "features": 32,
                "n_downs": 6,
                "block_type": "ResidualUnetBlock",
                "upsample_type": "Bilinear",
                "use_checkpointing": True,
                "learning_rate": {
                    "epochs": 50,
                    "epochs_decay": 50,
                    "initial": 0.0002,
                    "target": 0.0,
                },
                "optimizer": {"beta1": 0.5},
            },
            "discriminator": {
                "n_layers": 3,
                "base_channels": 64,
                "max_channels": 512,
                "learning_rate": {
                    "epochs": 30,
                    "epochs_decay": 70,
                    "initial": 0.0001,
                    "target": 0.0,
                },
                "optimizer": {"beta1": 0.9},
            },
            "loss": {"lambda_gan": 1.0, "lambda_l1": 100.0, "lambda_sobel": 5.0, "lambda_vgg": 0.0},
        },
        "save": {
            "save_model": True,
            "model_save_rate": 5,
            "example_save_rate": 1,
            "num_examples": 2,
        },
        "visualizer": {"visdom": {"enable": False, "port": 8100, "image_size": 400}},
    }
}


def test_show_prints_the_effective_config(capsys):
    code = main(["config", "show", "--config", "demo", "--set", 'train.generator={"features": 8}'])
    out = capsys.readouterr().out
    assert code == 0
    shown = json.loads(out)
    assert shown["train"]["generator"]["features"] == 8
    assert shown["train"]["generator"]["n_downs"] == 6  # the demo's, merged, not the default
    assert Config.load(shown).to_dict() == shown


def test_check_reports_valid_and_every_problem(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"train": {"epochs": 3}}))
    bad.write_text(json.dumps({"train": {"epochs": "3", "lr_initial": float("nan")}, "x": 1}))
    assert main(["config", "check", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "3 problem(s)" in err and "train.epochs: expected integer, got str '3'" in err
    assert "train.lr_initial: expected a finite number, got nan" in err
    assert "x: unknown key" in err and "Traceback" not in err


def test_schema_is_a_json_schema_with_every_description(capsys):
    assert main(["config", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["$schema"].startswith("https://json-schema.org/")
    assert printed["additionalProperties"] is False
    defs = printed["$defs"]
    for model in defs.values():
        for key, prop in model.get("properties", {}).items():
            assert prop.get("description"), key
    assert defs["VisdomConfig"]["properties"]["image_size"]["maximum"] == 2048
    assert printed == {"$schema": printed["$schema"], **NectarConfig.model_json_schema()}


def test_import_converts_an_upstream_config_and_names_what_it_could_not_map(tmp_path, capsys):
    src, out = tmp_path / "upstream.json", tmp_path / "ours.json"
    src.write_text(json.dumps(UPSTREAM))
    assert main(["config", "import", str(src), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    cfg = Config.load(out)
    g, d = cfg.train.optimizer_for("generator"), cfg.train.optimizer_for("discriminator")
    # upstream counts neither its first down block nor its bottleneck
    assert cfg.train.generator.n_downs == 8 and cfg.train.generator.norm == "instance_noaffine"
    assert (cfg.train.generator.block_type, cfg.train.generator.upsample) == (
        "residual",
        "bilinear",
    )
    assert (cfg.dataloader.direction, cfg.dataloader.batch_size) == ("BtoA", 4)
    assert cfg.dataloader.dataroot == "data/facades" and cfg.common.experiment_name == "facades"
    assert (g.lr_initial, g.epochs, g.epochs_decay, g.beta1) == (0.0002, 50, 50, 0.5)
    assert (d.lr_initial, d.epochs, d.epochs_decay, d.beta1) == (0.0001, 30, 70, 0.9)
    assert cfg.train.loss.subspec == "extended" and cfg.train.loss.lambda_sobel == 5.0
    assert cfg.visualizer.visdom.port == 8100 and cfg.save.model_save_rate == 5
    for unmapped in (
        "common.cudnn",
        "common.experiment_version",
        "dataloader.masking",
        "train.generator.use_checkpointing",
    ):
        assert unmapped in printed, unmapped
    # a second import does not overwrite without --force
    assert main(["config", "import", str(src), "--output", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    # Before: an output under a file was a FileExistsError traceback (exit 1).
    assert main(["config", "import", str(src), "--output", str(out / "x.json")]) == 2
    err = capsys.readouterr().err
    assert f"is inside '{out}', which is a file" in err and "Traceback" not in err


def test_an_upstream_file_given_to_train_says_to_import_it(tmp_path, capsys):
    src = tmp_path / "upstream.json"
    src.write_text(json.dumps(UPSTREAM))
    assert main(["train", "--config", str(src)]) == 2
    err = capsys.readouterr().err
    assert "upstream NectarGAN config" in err and f"nectargan config import {src}" in err
    ours = tmp_path / "ours.json"
    ours.write_text("{}")
    assert main(["config", "import", str(ours), "--output", str(tmp_path / "o.json")]) == 2
    assert "not an upstream NectarGAN config" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "train.lr_initial=NaN"], "train.lr_initial: expected a finite number, got nan"),
        (["--set", "train.beta1=Infinity"], "train.beta1: expected a finite number, got inf"),
        (
            ["--set", "train.epochs.x=1"],
            "train.epochs.x: train.epochs is a value (100), not a section",
        ),
        (["--dataroot", ""], "dataloader.dataroot: expected a dataset directory or null"),
        (
            ["--epochs", "0", "--epochs-decay", "0"],
            "expected train.epochs + train.epochs_decay >= 1",
        ),
        (["--set", "visualizer.visdom.image_size=5000"], "image_size: expected <= 2048, got 5000"),
    ],
)
def test_train_refuses_before_creating_anything(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["train", "--output", str(out), "--no-visdom", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()  # no experiment directory, no synthetic dataset


def test_train_refuses_an_output_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("not a directory")
    assert main(["train", "--output", str(target), "--no-visdom"]) == 2
    err = capsys.readouterr().err
    assert "common.output_directory: expected a directory" in err and "is a file" in err
