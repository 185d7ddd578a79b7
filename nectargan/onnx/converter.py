"""Export a generator to ONNX: ``export_onnx`` and the upstream ``ONNXConverter`` API.

The graph takes ``input`` float32 ``[N, C, H, W]`` in [-1, 1] and returns ``output`` of
the same shape. By default N, H and W are dynamic, with H and W declared as multiples
of ``2**n_downs`` (what the U-Net accepts), so one file serves every image size.

Exporter: torch's ``torch.export``-based one (``dynamo=True``) for opset >= 18, its
native range. An older opset (e.g. upstream's documented ``opset_version=11``) is
produced by torch's TorchScript-based exporter instead, which still writes it
directly; the dynamo path's down-conversion cannot (it keeps 18 and warns).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from nectargan.inference.model_info import ModelInfo
from nectargan.onnx.deps import require

# The oldest opset torch.export's ONNX exporter implements natively.
DYNAMO_MIN_OPSET = 18
# Sample input multiples: 1 would make torch.export specialise the axis to one size.
SAMPLE_BATCH, SAMPLE_HK, SAMPLE_WK = 2, 2, 3


class OnnxExportError(RuntimeError):
    """torch could not export the generator, or not at the requested opset."""


@contextlib.contextmanager
def quiet_export(enabled: bool = True) -> Iterator[io.StringIO]:
    """Silence the exporter's progress prints, log lines and warnings (kept for errors)."""
    captured = io.StringIO()
    if not enabled:
        yield captured
        return
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(captured),
            contextlib.redirect_stderr(captured),
        ):
            warnings.simplefilter("ignore")
            yield captured
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def sample_input(info: ModelInfo, static_hw: tuple[int, int] | None) -> torch.Tensor:
    m = info.size_multiple
    h, w = static_hw if static_hw is not None else (SAMPLE_HK * m, SAMPLE_WK * m)
    generator = torch.Generator().manual_seed(0)
    return torch.rand(SAMPLE_BATCH, info.channels, h, w, generator=generator) * 2 - 1


def check_static_hw(static_hw: Sequence[int] | None, multiple: int) -> tuple[int, int] | None:
    if static_hw is None:
        return None
    hw = tuple(int(v) for v in static_hw)
    if len(hw) != 2 or any(v < multiple or v % multiple for v in hw):
        from nectargan.errors import ConfigUserError

        raise ConfigUserError(
            f"--static: expected H W, each a positive multiple of 2**n_downs={multiple}, "
            f"got {' '.join(map(str, static_hw))}"
        )
    return hw  # type: ignore[return-value]


def uses_dynamo(opset_version: int | None) -> bool:
    """The torch.export-based exporter for new opsets, where this torch has it (>= 2.5)."""
    import inspect

    has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
    return has_dynamo and (opset_version is None or opset_version >= DYNAMO_MIN_OPSET)


def export_onnx(
    generator: torch.nn.Module,
    info: ModelInfo,
    path: str | Path,
    *,
    opset_version: int | None = None,
    static_hw: Sequence[int] | None = None,
    input_names: Sequence[str] = ("input",),
    output_names: Sequence[str] = ("output",),
    export_params: bool = True,
    do_constant_folding: bool = True,
    quiet: bool = True,
) -> dict[str, Any]:
    """Write ``generator`` (eval mode, CPU, fp32) to ``path``; returns opset and exporter used.

    Metadata is not added here (see :mod:`nectargan.onnx.metadata`).
    """
    (onnx,) = require("onnx")
    hw = check_static_hw(static_hw, info.size_multiple)
    if opset_version is not None and opset_version < 7:
        from nectargan.errors import ConfigUserError

        raise ConfigUserError(f"--opset {opset_version}: expected 7 or newer")
    generator = generator.eval()
    x = sample_input(info, hw).to(next(generator.parameters()).device)
    common = {
        "input_names": list(input_names),
        "output_names": list(output_names),
        "opset_version": opset_version,
        "export_params": export_params,
        "do_constant_folding": do_constant_folding,
    }
    dynamo = uses_dynamo(opset_version)
    if dynamo:
        require("onnxscript")
    with torch.no_grad(), quiet_export(quiet) as log:
        try:
            if dynamo:
                _export_dynamo(generator, x, path, info, hw, common)
            else:
                _export_torchscript_based(generator, x, path, hw, common)
        except Exception as exc:
            detail = log.getvalue().strip().splitlines()[-5:]
            raise OnnxExportError(
                f"torch.onnx.export failed ({'dynamo' if dynamo else 'TorchScript'} exporter, "
                f"opset {opset_version or 'default'}): {exc}"
                + ("\n" + "\n".join(detail) if detail else "")
            ) from exc
    got = next(
        o.version
        for o in onnx.load(str(path), load_external_data=False).opset_import
        if o.domain in ("", "ai.onnx")
    )
    if opset_version is not None and got != opset_version:
        raise OnnxExportError(
            f"asked for opset {opset_version} but the exporter produced opset {got}; "
            f"use --opset {got} or one >= {DYNAMO_MIN_OPSET}"
        )
    return {"opset": got, "exporter": "dynamo" if dynamo else "torchscript", "static_hw": hw}


def _export_dynamo(generator, x, path, info, hw, common) -> None:
    from torch.export import Dim

    shapes: dict[int, Any] = {0: Dim("batch", min=1, max=4096)}
    if hw is None:
        m = info.size_multiple
        shapes[2] = m * Dim("h_blocks", min=1, max=max(2, 16384 // m))
        shapes[3] = m * Dim("w_blocks", min=1, max=max(2, 16384 // m))
    torch.onnx.export(
        generator,
        (x,),
        str(path),
        dynamo=True,
        external_data=False,
        dynamic_shapes={"x": shapes},
        verbose=False,
        **common,
    )


def _export_torchscript_based(generator, x, path, hw, common) -> None:
    axes = {0: "batch"} if hw is not None else {0: "batch", 2: "height", 3: "width"}
    names = common["input_names"][:1] + common["output_names"][:1]
    torch.onnx.export(
        generator,
        (x,),
        str(path),
        dynamo=False,
        training=torch.onnx.TrainingMode.EVAL,
        dynamic_axes={name: axes for name in names},
        **common,
    )


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
        from nectargan.inference.checkpoints import load_inference_generator
        from nectargan.trainers.precision import resolve_device

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
        from nectargan.inference.export import export_generator

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
    from collections.abc import Mapping

    from nectargan.config import Config
    from nectargan.config.upstream import convert, is_upstream

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
    from nectargan.errors import ConfigUserError

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
        from nectargan.errors import ConfigUserError

        raise ConfigUserError(f"{name}={given}: the checkpoint's generator takes {actual} channels")
    return actual
