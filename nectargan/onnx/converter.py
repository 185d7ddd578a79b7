"""Upstream NectarGAN's ``ONNXConverter`` API, and ``export_onnx`` at its upstream path.

The export itself is :func:`nectargan.onnx.export.export_generator` (temporary file,
metadata, self-check, rename); the graph, :mod:`nectargan.onnx.graph`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from nectargan.config import Config
from nectargan.config.upstream import convert, is_upstream
from nectargan.errors import ConfigUserError
from nectargan.inference.checkpoints import load_inference_generator
from nectargan.onnx.export import export_generator
from nectargan.onnx.graph import OnnxExportError, check_static_hw, export_onnx
from nectargan.trainers.precision import resolve_device

__all__ = ["ONNXConverter", "OnnxExportError", "export_onnx"]


class ONNXConverter:
    """Upstream NectarGAN's converter: a run's checkpoint -> ``experiment_dir/epoch{N}.onnx``.

    Arguments as upstream documents them; ``config`` may also be None (the run's own
    config, stored in its checkpoint, is used). The generator's architecture always
    comes from the checkpoint; a ``config`` whose generator settings differ is refused
    rather than silently building a different network. ``crop_size`` and ``in_channels``
    set the self-check's input and must fit the checkpoint. The exported graph has
    dynamic batch and spatial axes, like ``nectargan export``, and is checked after
    export (``onnx.checker`` and onnxruntime vs torch).
    """

    def __init__(
        self,
        experiment_dir: str | PathLike,
        config: Any = None,
        load_epoch: int | None = None,
        in_channels: int | None = None,
        crop_size: int | None = None,
        device: str | None = None,
    ) -> None:
        self.experiment_dir = Path(experiment_dir)
        user_config, upstream_epoch = _load_config(config)
        if load_epoch is None:
            load_epoch = (
                upstream_epoch if upstream_epoch is not None else _config_epoch(user_config)
            )
        self.device = resolve_device(
            device or _config_value(user_config, "common", "device", "cpu")
        )
        self.gen, self.config, self.info, self.checkpoint = load_inference_generator(
            self.experiment_dir, "latest" if load_epoch in (None, -1) else load_epoch, "cpu"
        )
        self.load_epoch = self.info.epoch if load_epoch in (None, -1) else int(load_epoch)
        if user_config is not None:
            _refuse_other_generator(user_config, self.config)
        self.in_channels = _matching("in_channels", in_channels, self.info.channels)
        self.crop_size = crop_size or self.info.crop_size
        check_static_hw((self.crop_size, self.crop_size), self.info.size_multiple)

    def _build_output_path(self) -> Path:
        return self.experiment_dir / f"epoch{self.load_epoch}.onnx"

    def convert_model(
        self,
        export_params: bool = True,
        opset_version: int | None = None,
        do_constant_folding: bool = True,
        input_names: Sequence[str] = ("input",),
        output_names: Sequence[str] = ("output",),
        suppress_onnx_warnings: bool = True,
    ) -> str:
        """Export, write metadata, self-check; returns the ``.onnx`` path (posix string)."""
        report = export_generator(
            self.gen,
            self.config,
            self.info,
            self._build_output_path(),
            fmt="onnx",
            opset_version=opset_version,
            input_names=input_names,
            output_names=output_names,
            export_params=export_params,
            do_constant_folding=do_constant_folding,
            quiet=suppress_onnx_warnings,
            overwrite=True,
            check_hw=(self.crop_size, self.crop_size),
        )
        self.report = report
        return Path(report["path"]).as_posix()


def _load_config(config: Any) -> tuple[Any, int | None]:
    """(our Config or None, upstream's ``train.load.load_epoch`` when the file is upstream's).

    Upstream NectarGAN configs (everything under one ``"config"`` object) are converted
    with the same mapping as ``nectargan config import``, so upstream's own example,
    which passes its training config, works unchanged.
    """
    if config is None:
        return None, None
    data = config
    if isinstance(config, str | PathLike):
        try:
            data = json.loads(Path(config).read_text())
        except (OSError, ValueError):
            data = None  # Config.load reports the problem with its own message
    if isinstance(data, Mapping) and is_upstream(data):
        ours, _notes = convert(data)
        load = data["config"].get("train", {}).get("load", {})
        epoch = load.get("load_epoch") if isinstance(load, Mapping) else None
        return Config.load(ours), (int(epoch) if isinstance(epoch, int) else None)
    return Config.load(config), None


def _config_value(config: Any, section: str, key: str, default: Any) -> Any:
    try:
        return getattr(getattr(config, section), key) if config is not None else default
    except (AttributeError, KeyError):
        return default


def _config_epoch(config: Any) -> int | None:
    """Upstream reads ``train.load.load_epoch``; here the equivalent is ``train.resume.epoch``."""
    try:
        epoch = config.train.resume.epoch if config is not None else None
    except (AttributeError, KeyError):
        return None
    return None if epoch in (None, -1) else int(epoch)


def _refuse_other_generator(user_config: Any, run_config: Any) -> None:
    mine = _as_dict(user_config.train.generator)
    theirs = _as_dict(run_config.train.generator)
    differ = sorted(k for k in theirs if mine.get(k) != theirs[k])
    if differ:
        pairs = ", ".join(f"{k}: {mine.get(k)!r} vs {theirs[k]!r}" for k in differ)
        raise ConfigUserError(
            f"config's train.generator does not match the checkpoint's ({pairs}); the "
            "checkpoint's architecture is what can be loaded, so pass its config or config=None"
        )


def _as_dict(section: Any) -> dict[str, Any]:
    for method in ("to_dict", "model_dump"):
        if hasattr(section, method):
            return dict(getattr(section, method)())
    return dict(section)


def _matching(name: str, given: int | None, actual: int) -> int:
    if given is not None and int(given) != actual:
        raise ConfigUserError(f"{name}={given}: the checkpoint's generator takes {actual} channels")
    return actual
