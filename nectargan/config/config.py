"""A validated config: the schema's typed sections plus loading, overrides and export.

Whatever a user leaves out takes the schema's default
(:mod:`nectargan.config.schema`, also written out as ``default.json``);
whatever they put in is validated, and *all* problems are reported in one
:class:`ConfigError` (key path, expected, got), so a typo costs one
round-trip, not five.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nectargan.config.problems import ConfigError, problems_from
from nectargan.config.schema import (
    CommonConfig,
    DataloaderConfig,
    NectarConfig,
    SaveConfig,
    Section,
    TrainConfig,
    VisualizerConfig,
    default_values,
)
from nectargan.config.upstream import upstream_hint
from nectargan.utils.atomic import atomic_write_text
from nectargan.utils.forwarded import Forwarded


def default_config_dict() -> dict[str, Any]:
    """Every key with its default value (the content of ``default.json``)."""
    return default_values()


def validate(data: Mapping[str, Any], source: str = "config") -> NectarConfig:
    """The typed config for ``data`` (defaults filled in), or a ConfigError listing every problem."""
    hint = upstream_hint(data, source)
    if hint:
        raise ConfigError([hint], source)
    try:
        return NectarConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(problems_from(exc, NectarConfig), source) from None


class Config:
    """A validated, read-only config: ``cfg.train.generator.n_downs``, typed.

    The sections are the schema's pydantic models (``cfg.model`` is the whole
    :class:`~nectargan.config.schema.NectarConfig`), so editors and type
    checkers know every key; each also reads as a Mapping (``cfg["train"]["epochs"]``).
    """

    __slots__ = ("model",)
    model: NectarConfig

    def __init__(self, data: Mapping[str, Any] | None = None, source: str = "config") -> None:
        object.__setattr__(self, "model", validate(data or {}, source))

    @classmethod
    def from_model(cls, model: NectarConfig) -> Config:
        cfg = cls.__new__(cls)
        object.__setattr__(cfg, "model", model)
        return cfg

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
            return cls(read_json(Path(source)), source=str(source))
        raise TypeError(f"config must be a path, dict, Config or None, got {type(source).__name__}")

    # -- typed sections ------------------------------------------------------------------

    common = Forwarded[CommonConfig]("model.common")
    dataloader = Forwarded[DataloaderConfig]("model.dataloader")
    train = Forwarded[TrainConfig]("model.train")
    save = Forwarded[SaveConfig]("model.save")
    visualizer = Forwarded[VisualizerConfig]("model.visualizer")

    def __getitem__(self, name: str) -> Section:
        return self.model[name]

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Config is read-only; use with_overrides()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle/copy as the validated data (``__setattr__`` is closed to unpickling)."""
        return (Config, (self.to_dict(),))

    def __repr__(self) -> str:
        return f"Config({json.dumps(self.to_dict())})"

    # -- conversions ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return self.model.to_dict()

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "config") -> Config:
        """A new Config with dotted-path overrides (``{'train.epochs': 2}``), validated.

        An object value merges into the section it names
        (``{'train.generator': {'features': 8}}`` keeps the other generator keys).
        """
        data = self.to_dict()
        problems = [p for path, value in overrides.items() if (p := _set_path(data, path, value))]
        try:
            config = Config(data, source)
        except ConfigError as exc:
            problems += exc.problems
        if problems:
            raise ConfigError(problems, source)
        return config

    def export(self, path: str | Path) -> Path:
        """Write the effective config (defaults included) as JSON, atomically."""
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


def check_output_directory(config: Config) -> None:
    """``common.output_directory`` must be a directory or not exist yet (it is created)."""
    path = Path(config.common.output_directory)
    if path.exists() and not path.is_dir():
        raise ConfigError(
            [
                f"common.output_directory: expected a directory (or a path to create), "
                f"but {str(path)!r} is a file"
            ],
            "--output / common.output_directory",
        )


def _set_path(data: dict[str, Any], path: str, value: Any) -> str | None:
    """Put ``value`` at dotted ``path`` in ``data``; a problem line when the path is impossible."""
    *parents, leaf = path.split(".")
    if not all(parents) or not leaf:
        return f"{path}: expected a dotted key such as train.generator.features"
    node = data
    for depth, key in enumerate(parents):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            where = ".".join(parents[: depth + 1])
            return (
                f"{path}: {where} is a value ({json.dumps(child)}), not a section with keys; "
                f"set it as {where}=VALUE"
            )
        node = child
    if isinstance(value, Mapping) and isinstance(node.get(leaf), dict):
        node[leaf] = _deep_merge(node[leaf], value)
    else:
        node[leaf] = copy.deepcopy(value)
    return None


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``, or a ConfigError saying why not (with line and column)."""
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
