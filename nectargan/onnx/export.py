"""``nectargan export``: a run's generator to ONNX or TorchScript, checked before it is kept.

The file is written under a temporary name next to the target, validated (see
:mod:`nectargan.onnx.selfcheck`) and only then renamed into place, so a failed
export leaves no file behind and an existing good one is never half-replaced.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from nectargan.errors import DataUserError
from nectargan.experiment_layout import EXPORT_DIR
from nectargan.inference.checkpoints import load_inference_generator
from nectargan.inference.model_info import ModelInfo
from nectargan.inference.samples import check_batches
from nectargan.inference.torchscript import check_torchscript_file, export_torchscript
from nectargan.onnx.deps import require
from nectargan.onnx.graph import check_static_hw, export_onnx, sample_input, uses_dynamo
from nectargan.onnx.metadata import metadata_for, write_metadata
from nectargan.onnx.selfcheck import check_onnx_file
from nectargan.utils.atomic import current_umask
from nectargan.utils.outputs import output_file

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}


def default_output(experiment_dir: str | Path, epoch: int | None, fmt: str) -> Path:
    tag = f"epoch_{epoch:04d}" if epoch is not None else "generator"
    return Path(experiment_dir) / EXPORT_DIR / f"{tag}{SUFFIX[fmt]}"


def export_experiment(
    experiment_dir: str | Path,
    epoch: str | int = "latest",
    fmt: str = "onnx",
    output: str | Path | None = None,
    opset_version: int | None = None,
    static_hw: Sequence[int] | None = None,
    overwrite: bool = False,
    quiet: bool = True,
) -> dict[str, Any]:
    """Export the checkpoint ``epoch`` of a run; returns the report (path, diffs, metadata)."""
    _check_format(fmt)
    if fmt == "onnx":
        require("onnx", "onnxruntime", *(["onnxscript"] if uses_dynamo(opset_version) else []))
    generator, config, info, checkpoint = load_inference_generator(experiment_dir, epoch, "cpu")
    out = default_output(experiment_dir, info.epoch, fmt)
    if output:
        out = _into_folder(output, out.name)
    report = export_generator(
        generator,
        config,
        info,
        out,
        fmt=fmt,
        opset_version=opset_version,
        static_hw=static_hw,
        overwrite=overwrite,
        quiet=quiet,
    )
    report["checkpoint"] = str(checkpoint)
    return report


def _into_folder(output: str | Path, name: str) -> Path:
    """``--output`` as given, or ``output/name`` for a folder (existing, or written ``dir/``).

    As with ``cp``: naming a folder means "put it in there", not "replace the folder".
    """
    if Path(output).is_dir() or str(output).endswith(("/", os.sep)):
        return Path(output) / name
    return Path(output)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise DataUserError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


def export_generator(
    generator: torch.nn.Module,
    config: Any,
    info: ModelInfo,
    out: Path,
    *,
    fmt: str = "onnx",
    static_hw: Sequence[int] | None = None,
    overwrite: bool = False,
    check_hw: tuple[int, int] | None = None,
    **onnx_options: Any,
) -> dict[str, Any]:
    """Export to a temporary sibling of ``out``, add metadata, self-check, rename into place.

    ``onnx_options`` go to :func:`nectargan.onnx.converter.export_onnx` (``opset_version``,
    ``input_names``, ``output_names``, ``export_params``, ``do_constant_folding``, ``quiet``).
    ``check_hw`` is the self-check's input size (default: the training crop size).
    """
    _check_format(fmt)
    out = output_file(out, "--output", f"a file name such as generator{SUFFIX[fmt]}")
    if out.exists() and not overwrite:
        raise DataUserError(f"'{out}' already exists; pass --overwrite to replace it")
    hw = check_static_hw(static_hw, info.size_multiple)
    info = replace(info, static_hw=hw)
    generator = generator.to("cpu").eval()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=SUFFIX[fmt], dir=out.parent)
    os.fchmod(fd, 0o666 & ~current_umask())  # as a plain open() would, not mkstemp's 0600
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        batches = check_batches(config, info, hw or check_hw or (info.crop_size,) * 2, hw is None)
        if fmt == "onnx":
            report = _export_onnx_checked(generator, info, tmp, batches, onnx_options)
        else:
            report = _export_torchscript_checked(generator, info, tmp, batches)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    report.update(path=str(out), format=fmt, metadata=metadata_for(info), epoch=info.epoch)
    return report


def _export_onnx_checked(
    generator: torch.nn.Module,
    info: ModelInfo,
    tmp: Path,
    batches: list,
    options: dict[str, Any],
) -> dict[str, Any]:
    (onnx,) = require("onnx")
    result = export_onnx(generator, info, tmp, static_hw=info.static_hw, **options)
    model = onnx.load(str(tmp))
    write_metadata(model, metadata_for(info, opset=result["opset"], exporter=result["exporter"]))
    onnx.save(model, str(tmp))
    parity = options.get("export_params", True)  # without weights there is nothing to run
    return {**result, **check_onnx_file(tmp, generator, batches, run_parity=parity)}


def _export_torchscript_checked(
    generator: torch.nn.Module, info: ModelInfo, tmp: Path, batches: list
) -> dict[str, Any]:
    export_torchscript(generator, sample_input(info, info.static_hw), tmp, metadata_for(info))
    return {"exporter": "torch.jit.trace", **check_torchscript_file(tmp, generator, batches)}
