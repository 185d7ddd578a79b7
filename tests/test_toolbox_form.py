"""The New-run form: fields read from the schema, a posted form checked by the same schema
with each problem beside its field, config files loaded, imported and saved inside the roots,
and the folder picker and dataset check confined to the roots."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nectargan.config import Config
from nectargan.config.augment_schema import AUGMENTATIONS
from nectargan.config.config import default_config_dict
from nectargan.config.schema import NectarConfig
from nectargan.dataset.layout import check_layout, survey_layout
from nectargan.toolbox.config_files import load_config_file, save_config
from nectargan.toolbox.folders import browse, check_dataset, check_run_paths
from nectargan.toolbox.form import (
    FORM_LEVEL,
    changed_fields,
    check_config_dict,
    default_texts,
    differences,
    read_form,
)
from nectargan.toolbox.form_fields import fields_by_key, form_groups
from nectargan.toolbox.paths import PathRefused


def _leaf_keys(data: dict, prefix: str = "") -> set[str]:
    """Every key of a config dict down to values (dicts of sections are walked)."""
    keys = set()
    for name, value in data.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and key != "train.loss.schedules":
            keys |= _leaf_keys(value, key + ".")
        else:
            keys.add(key)
    return keys


def _posted(**changes: str) -> list[tuple[str, str]]:
    texts = dict(default_texts())
    texts.update({k.replace("__", "."): v for k, v in changes.items()})
    return list(texts.items())


# -- fields from the schema ----------------------------------------------------------------------


def test_every_key_of_the_schema_is_a_field_with_its_description_and_default() -> None:
    fields = fields_by_key()
    assert set(fields) == _leaf_keys(default_config_dict())
    for f in fields.values():
        assert f.help, f"{f.key} has no help"
        assert f.default == _default_of(f.key)
    epochs = fields["train.epochs"]
    assert (epochs.kind, epochs.minimum, epochs.bounds) == ("int", 0, ">= 0")
    assert (
        epochs.help
        == NectarConfig.model_fields["train"].annotation.model_fields["epochs"].description
    )
    assert fields["train.beta1"].bounds == ">= 0, < 1"
    assert fields["dataloader.direction"].choices == ("AtoB", "BtoA")
    assert fields["dataloader.pin_memory"].choices == ("auto", True, False)
    assert fields["dataloader.dataroot"].nullable
    assert fields["dataloader.augment.rotate.degrees"].kind == "range"
    assert fields["dataloader.augment.jpeg.quality"].item == "int"


def _default_of(key: str):
    node = default_config_dict()
    for part in key.split("."):
        node = node[part]
    return node


def test_the_fourteen_augmentations_each_have_a_group_with_their_probability() -> None:
    groups = {g.key: g for g in form_groups()}
    for name in AUGMENTATIONS:
        group = groups[f"dataloader.augment.{name}"]
        assert group.fields[0].name == "p"
        assert (group.fields[0].minimum, group.fields[0].maximum) == (0, 1)
    assert len(AUGMENTATIONS) == 14


# -- a posted form -> a config ----------------------------------------------------------------


def test_the_default_form_is_the_default_config() -> None:
    result = read_form(_posted())
    assert result.valid and result.config == Config()
    assert changed_fields(default_texts()) == set()


def test_typed_values_become_the_schemas_types() -> None:
    result = read_form(
        _posted(
            train__epochs="3",
            train__lr_initial="1e-4",
            dataloader__channels="1",
            dataloader__pin_memory="false",
            dataloader__dataroot="",
            train__generator__use_dropout="false",
            **{"dataloader.augment.rotate.degrees[min]": "-5", "train.loss.vgg_layers": "a, b"},
        )
    )
    assert result.valid, result.errors
    cfg = result.config
    assert (cfg.train.epochs, cfg.train.lr_initial, cfg.dataloader.channels) == (3, 1e-4, 1)
    assert cfg.dataloader.pin_memory is False and cfg.dataloader.dataroot is None
    assert cfg.train.generator.use_dropout is False
    assert cfg.dataloader.augment.rotate.degrees == [-5.0, 15.0]
    assert cfg.train.loss.vgg_layers == ["a", "b"]


def test_a_checkbox_posts_false_then_true_and_the_last_wins() -> None:
    items = _posted() + [("save.log_losses", "false")]
    assert read_form(items).config.save.log_losses is False
    items += [("save.log_losses", "true")]
    assert read_form(items).config.save.log_losses is True


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("train.epochs", "-1", "expected >= 0, got -1"),
        ("train.epochs", "two", "expected integer, got str 'two'"),
        ("train.epochs", "1.5", "expected integer, got float 1.5"),
        ("train.lr_initial", "nan", "expected a finite number, got nan"),
        ("train.lr_initial", "inf", "expected a finite number, got inf"),
        ("train.beta1", "1", "expected < 1, got 1.0"),
        ("dataloader.direction", "up", "expected one of ['AtoB', 'BtoA'], got 'up'"),
        ("common.experiment_name", "a b", "got 'a b'"),
        ("dataloader.augment.hflip.p", "2", "expected <= 1, got 2.0"),
        ("dataloader.augment.rotate.degrees[min]", "30", "min <= max, got [30.0, 15.0]"),
        ("train.loss.schedules", "{bad", "expected JSON"),
        ("train.loss.schedules", '{"G_L1": {"start_epoch": 1}}', "G_L1.end_epoch: missing"),
        ("dataloader.crop_size", "250", "expected a multiple of 2**train.generator.n_downs"),
    ],
)
def test_each_bad_field_gets_the_schemas_message_beside_it(key, text, message) -> None:
    result = read_form(_posted(**{key: text}))
    assert not result.valid and result.config is None
    field = key.removesuffix("[min]")
    assert any(message in m for m in result.errors[field]), result.errors
    assert set(result.errors) == {field}
    assert field in changed_fields(result.texts)


def test_every_bad_field_is_reported_at_once() -> None:
    result = read_form(
        _posted(train__epochs="-1", save__keep_last="x", visualizer__visdom__port="0")
    )
    assert set(result.errors) == {"train.epochs", "save.keep_last", "visualizer.visdom.port"}


def test_a_posted_name_that_is_no_field_is_refused_as_an_unknown_key() -> None:
    result = read_form(_posted(train__epochz="3"))
    assert not result.valid
    (line,) = result.errors[FORM_LEVEL]
    assert line.startswith("train.epochz: unknown key (valid here: ")


def test_the_pages_own_names_are_not_config_keys() -> None:
    assert read_form(_posted() + [("_action", "start"), ("_xsrf", "x")]).valid


def test_only_changes_lists_what_differs_from_the_defaults() -> None:
    texts = _posted(train__epochs="3", dataloader__augment__vflip__p="0.5")
    assert changed_fields(dict(texts)) == {"train.epochs", "dataloader.augment.vflip.p"}
    data = read_form(texts).config.to_dict()
    assert differences(data) == {"train.epochs": 3, "dataloader.augment.vflip.p": 0.5}


# -- a config posted whole (the JSON API) ------------------------------------------------------


def test_a_config_posted_whole_with_unknown_keys_or_nan_is_refused_naming_the_field() -> None:
    result = check_config_dict({"train": {"epochs": 2, "lr_initial": float("nan"), "zz": 1}})
    assert not result.valid
    assert result.errors["train.lr_initial"] == ["expected a finite number, got nan"]
    assert any(m.startswith("train.zz: unknown key") for m in result.errors[FORM_LEVEL])
    nan_from_json = json.loads('{"dataloader": {"augment": {"hflip": {"p": NaN}}}}')
    assert check_config_dict(nan_from_json).errors == {
        "dataloader.augment.hflip.p": ["expected a finite number, got nan"]
    }
    assert check_config_dict([1]).errors[FORM_LEVEL]
    ok = check_config_dict({"train": {"epochs": 2}})
    assert ok.valid and ok.texts["train.epochs"] == "2"


# -- config files --------------------------------------------------------------------------------


UPSTREAM = {
    "config": {
        "common": {"experiment_name": "facades", "cudnn": {"benchmark": True}},
        "dataloader": {"direction": "BtoA", "masking": {"enable": False}},
        "train": {"generator": {"features": 32, "use_checkpointing": True}},
    }
}


def test_load_ours_import_upstream_and_save_as_inside_the_root(tmp_path: Path) -> None:
    roots = [tmp_path.resolve()]
    ours = tmp_path / "ours.json"
    ours.write_text(json.dumps({"train": {"epochs": 7, "beta1": 2}}))
    loaded = load_config_file("ours.json", roots)
    assert not loaded.upstream and loaded.unmapped == []
    assert loaded.form.texts["train.epochs"] == "7"
    assert loaded.form.errors == {"train.beta1": ["expected < 1, got 2"]}

    (tmp_path / "up.json").write_text(json.dumps(UPSTREAM))
    imported = load_config_file(str(tmp_path / "up.json"), roots)
    assert imported.upstream and imported.form.valid
    assert imported.form.config.train.generator.features == 32
    assert any(n.startswith("common.cudnn:") for n in imported.unmapped)
    assert any(n.startswith("train.generator.use_checkpointing:") for n in imported.unmapped)

    saved = save_config(imported.form.config, "sub/../saved.json", roots)
    assert saved == roots[0] / "saved.json"
    assert Config.load(saved) == imported.form.config
    with pytest.raises(PathRefused, match="exists"):
        save_config(imported.form.config, "saved.json", roots)
    save_config(Config(), "saved.json", roots, overwrite=True)
    assert Config.load(saved) == Config()
    for bad in ("../out.json", "/tmp/x.json", "saved.txt", "nofolder/x.json"):
        with pytest.raises(PathRefused):
            save_config(Config(), bad, roots)


# -- folder picker and dataset check --------------------------------------------------------------


@pytest.fixture
def two_roots(tmp_path: Path, dataroot: Path) -> tuple[list[Path], Path]:
    data = tmp_path / "data"
    (data / "sets").mkdir(parents=True)
    os.symlink(dataroot, data / "sets" / "synth")  # a symlink out of the root
    (tmp_path / "data2" / "secret").mkdir(parents=True)  # shares the root's prefix
    os.symlink(tmp_path / "data2", data / "sets" / "escape")
    (data / "sets" / ".hidden").mkdir()
    (data / "sets" / "cfg.json").write_text("{}")
    return [data.resolve()], tmp_path


def test_the_picker_lists_only_inside_the_roots(two_roots) -> None:
    roots, tmp = two_roots
    top = browse("", roots)
    assert [f["path"] for f in top.folders] == [str(roots[0])] and top.parent is None
    listing = browse("sets", roots, suffix=".json")
    assert listing.folders == []  # both symlinks point out of the root; .hidden is hidden
    assert listing.files == ["cfg.json"] and listing.parent == str(roots[0])
    assert browse(str(roots[0]), roots).parent is None
    refused = [
        "..",
        "sets/../../data2",
        str(tmp / "data2"),
        "sets/escape",
        "sets/synth",
        "/etc",
        "sets/%2e%2e/%2e%2e",
        "a\x00b",
    ]
    for raw in refused:
        with pytest.raises(PathRefused):
            browse(raw, roots)


def test_the_dataset_check_is_the_layout_survey(tmp_path: Path, dataroot: Path) -> None:
    roots = [dataroot.parent.resolve()]
    good = check_dataset(str(dataroot), roots)
    assert good.ok and good.pairs == {"train": 32, "val": 4, "test": 4}
    assert good.pair_size == "32x32 px"
    assert good.pairs == check_layout(dataroot)
    with pytest.raises(PathRefused):
        check_dataset(str(tmp_path), roots)

    bad = tmp_path / "bad"
    (bad / "train").mkdir(parents=True)
    from PIL import Image

    for i in range(8):
        Image.new("RGB", (32, 32)).save(bad / "train" / f"{i}.png")
    (bad / "train" / "broken.png").write_bytes(b"not a png")
    check = check_dataset(str(bad), [tmp_path.resolve()])
    assert not check.ok and check.pairs == {"train": 9}
    assert len(check.problems) == 6  # five examples and a count of the rest
    assert check.problems[-1] == "train/: 4 more such images"
    assert survey_layout(bad, stop_early=True).problems == check.problems[:1]


def test_run_paths_must_lie_in_a_root_and_the_dataset_must_pass(tmp_path, dataroot) -> None:
    roots = [dataroot.parent.resolve()]
    data = default_config_dict()
    data["dataloader"]["dataroot"] = dataroot.name
    absolute, errors = check_run_paths(data, roots)
    assert errors == {}
    assert absolute == {
        "common.output_directory": str(roots[0] / "output"),
        "dataloader.dataroot": str(dataroot.resolve()),
    }
    data["common"]["output_directory"] = str(tmp_path)
    data["dataloader"]["dataroot"] = "empty"
    (roots[0] / "empty").mkdir(exist_ok=True)
    _, errors = check_run_paths(data, roots)
    assert "outside the Toolbox's roots" in errors["common.output_directory"][0]
    assert "no train/ folder" in errors["dataloader.dataroot"][0]
    data["dataloader"]["dataroot"] = "missing"
    assert check_run_paths(data, roots)[1]["dataloader.dataroot"] == [
        f"'{roots[0] / 'missing'}' is not a folder"
    ]
