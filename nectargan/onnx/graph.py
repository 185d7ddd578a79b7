"""A generator to an ONNX graph: ``export_onnx`` (metadata and self-check: :mod:`.export`).

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
import inspect
import io
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.export import Dim

from nectargan.errors import ConfigUserError
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
        raise ConfigUserError(
            f"--static: expected H W, each a positive multiple of 2**n_downs={multiple}, "
            f"got {' '.join(map(str, static_hw))}"
        )
    return hw  # type: ignore[return-value]


def uses_dynamo(opset_version: int | None) -> bool:
    """The torch.export-based exporter for new opsets, where this torch has it (>= 2.5)."""
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
