"""JSON configuration: packaged defaults, validation that reports every problem at once.

A config is a nested JSON object. Whatever a user leaves out is filled from
``default.json`` beside this file; whatever they put in is checked against
the type of the default value and the rules below, and *all* problems are
reported in one :class:`ConfigError` (key path, expected, got), so a typo
costs one round-trip, not five.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from nectargan.errors import ConfigUserError
from nectargan.utils.atomic import atomic_write_text

_ANY_NUMBER = (int, float)


@dataclass(frozen=True)
class Rule:
    """Extra constraints on one key beyond 'same type as the default'."""

    types: tuple[type, ...] | None = None  # override the type taken from the default
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    nullable: bool = False


RULES: dict[str, Rule] = {
    "common.device": Rule(types=(str,)),
    "common.seed": Rule(min=0),
    "common.num_threads": Rule(min=0),
    "dataloader.dataroot": Rule(types=(str,), nullable=True),
    "dataloader.direction": Rule(choices=("AtoB", "BtoA")),
    "dataloader.load_size": Rule(min=8),
    "dataloader.crop_size": Rule(min=8),
    "dataloader.channels": Rule(choices=(1, 3)),
    "dataloader.batch_size": Rule(min=1),
    "dataloader.num_workers": Rule(min=-1),
    "dataloader.pin_memory": Rule(types=(str, bool), choices=("auto", True, False)),
    "dataloader.augment.rotate_degrees": Rule(min=0, max=180),
    "dataloader.augment.color_jitter": Rule(min=0, max=1),
    "dataloader.augment.noise_std": Rule(min=0),
    "dataloader.augment.blur_sigma": Rule(min=0),
    "dataloader.synthetic.n": Rule(min=10),
    "dataloader.synthetic.size": Rule(min=16),
    "dataloader.synthetic.seed": Rule(min=0),
    "train.epochs": Rule(min=0),
    "train.epochs_decay": Rule(min=0),
    "train.lr_initial": Rule(min=0),
    "train.lr_target": Rule(min=0),
    "train.beta1": Rule(min=0, max=1),
    "train.generator.features": Rule(min=1),
    "train.generator.n_downs": Rule(min=1, max=10),
    "train.generator.block_type": Rule(choices=("plain", "residual")),
    "train.generator.upsample": Rule(choices=("transpose", "bilinear")),
    "train.generator.norm": Rule(choices=("batch", "instance")),
    "train.discriminator.base_channels": Rule(min=1),
    "train.discriminator.max_channels": Rule(min=1),
    "train.discriminator.n_layers": Rule(min=0, max=8),
    "train.discriminator.norm": Rule(choices=("batch", "instance")),
    "train.loss.subspec": Rule(choices=("basic", "extended", "basic+vgg", "extended+vgg")),
    "train.loss.lambda_gan": Rule(min=0),
    "train.loss.lambda_l1": Rule(min=0),
    "train.loss.lambda_l2": Rule(min=0),
    "train.loss.lambda_sobel": Rule(min=0),
    "train.loss.lambda_laplacian": Rule(min=0),
    "train.loss.lambda_vgg": Rule(min=0),
    "train.loss.vgg_weights": Rule(types=(str,), nullable=True),
    "train.mixed_precision": Rule(choices=("auto", "off", "bf16", "fp16")),
    "train.channels_last": Rule(types=(str, bool), choices=("auto", True, False)),
    "train.resume.experiment_dir": Rule(types=(str,), nullable=True),
    "train.resume.epoch": Rule(min=-1),
    "save.model_save_rate": Rule(min=0),
    "save.example_save_rate": Rule(min=0),
    "save.num_examples": Rule(min=0),
    "save.loss_log_every": Rule(min=1),
    "visualizer.visdom.port": Rule(min=1, max=65535),
    "visualizer.visdom.image_size": Rule(min=1),
    "visualizer.visdom.update_frequency": Rule(min=1),
    "visualizer.visdom.update_interval": Rule(min=0.05),
}


class ConfigError(ConfigUserError):
    """Every problem found in a config, one line per key path."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        super().__init__(
            f"invalid {source} ({len(problems)} problem(s)):\n  " + "\n  ".join(problems)
        )


def default_config_dict() -> dict[str, Any]:
    text = resources.files("nectargan.config").joinpath("default.json").read_text()
    return json.loads(text)


def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "integer", float: "number", bool: "boolean", str: "string", dict: "object"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _expected_types(path: str, default: Any) -> tuple[type, ...]:
    rule = RULES.get(path)
    if rule and rule.types:
        return rule.types
    if isinstance(default, bool):
        return (bool,)
    if isinstance(default, float):
        return _ANY_NUMBER  # 2 is a fine learning-rate multiplier, as is 2.0
    return (type(default),)


def _check_value(path: str, value: Any, default: Any) -> str | None:
    rule = RULES.get(path, Rule())
    if value is None:
        return (
            None
            if rule.nullable
            else f"{path}: expected {_type_name(_expected_types(path, default))}, got null"
        )
    types = _expected_types(path, default)
    # bool is an int subclass in Python; never accept True where a number is meant.
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        return f"{path}: expected {_type_name(types)}, got {type(value).__name__} {value!r}"
    if rule.choices is not None and value not in rule.choices:
        return f"{path}: expected one of {list(rule.choices)}, got {value!r}"
    if isinstance(value, _ANY_NUMBER) and not isinstance(value, bool):
        if rule.min is not None and value < rule.min:
            return f"{path}: expected >= {rule.min}, got {value!r}"
        if rule.max is not None and value > rule.max:
            return f"{path}: expected <= {rule.max}, got {value!r}"
    return None


def _merge(
    user: Mapping[str, Any], default: Mapping[str, Any], prefix: str, problems: list[str]
) -> dict:
    """Defaults overlaid with the user's values, collecting problems as it goes."""
    merged = copy.deepcopy(dict(default))
    for key, value in user.items():
        path = f"{prefix}{key}"
        if key not in default:
            problems.append(f"{path}: unknown key (valid here: {', '.join(sorted(default))})")
            continue
        if isinstance(default[key], dict):
            if not isinstance(value, Mapping):
                problems.append(f"{path}: expected object, got {type(value).__name__} {value!r}")
                continue
            merged[key] = _merge(value, default[key], f"{path}.", problems)
            continue
        problem = _check_value(path, value, default[key])
        if problem:
            problems.append(problem)
        else:
            merged[key] = value
    return merged


def _cross_checks(cfg: dict[str, Any]) -> list[str]:
    dl = cfg["dataloader"]
    problems = []
    if dl["crop_size"] > dl["load_size"]:
        problems.append(
            f"dataloader.crop_size: expected <= dataloader.load_size ({dl['load_size']}), got {dl['crop_size']}"
        )
    n_downs = cfg["train"]["generator"]["n_downs"]
    if dl["crop_size"] % (2**n_downs):
        problems.append(
            f"dataloader.crop_size: expected a multiple of 2**train.generator.n_downs = {2**n_downs}, "
            f"got {dl['crop_size']}"
        )
    return problems


class Config:
    """A validated config with attribute access (``cfg.train.generator.n_downs``)."""

    def __init__(self, data: Mapping[str, Any] | None = None, source: str = "config") -> None:
        problems: list[str] = []
        merged = _merge(data or {}, default_config_dict(), "", problems)
        if not problems:
            problems = _cross_checks(merged)
        if problems:
            raise ConfigError(problems, source)
        object.__setattr__(self, "_data", merged)

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any] | Config | None = None) -> Config:
        """Accept a JSON path, a dict, a Config (returned as is) or None (defaults)."""
        if source is None:
            return cls()
        if isinstance(source, Config):
            return source
        if isinstance(source, Mapping):
            return cls(source)
        if isinstance(source, (str, Path)):
            return cls(_read_json(Path(source)), source=str(source))
        raise TypeError(f"config must be a path, dict, Config or None, got {type(source).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def with_overrides(self, overrides: Mapping[str, Any]) -> Config:
        """A new Config with dotted-path overrides (``{'train.epochs': 2}``), validated."""
        data = self.to_dict()
        for path, value in overrides.items():
            node = data
            *parents, leaf = path.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        return Config(data)

    def export(self, path: str | Path) -> Path:
        """Write the effective config (defaults included) as JSON, atomically."""
        return atomic_write_text(path, json.dumps(self._data, indent=2) + "\n")

    def __getattr__(self, name: str) -> Any:
        return _wrap(self._data, name)

    def __getitem__(self, name: str) -> Any:
        return self._data[name]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is read-only; use with_overrides()")

    def __repr__(self) -> str:
        return f"Config({json.dumps(self._data)})"


class _Section(Mapping):
    """Read-only attribute/item view of one config section."""

    def __init__(self, data: dict[str, Any], path: str) -> None:
        self._data = data
        self._path = path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _wrap(self._data, name, self._path)

    def __getitem__(self, name: str) -> Any:
        value = self._data[name]
        return _Section(value, f"{self._path}{name}.") if isinstance(value, dict) else value

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)


def _wrap(data: dict[str, Any], name: str, path: str = "") -> Any:
    if name not in data:
        raise AttributeError(f"config has no key {path}{name!s}")
    value = data[name]
    return _Section(value, f"{path}{name}.") if isinstance(value, dict) else value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror}"], str(path)) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"], str(path)
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError([f"top level: expected object, got {type(data).__name__}"], str(path))
    return data
