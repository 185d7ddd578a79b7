"""After an export: is the file valid ONNX, and does it compute what the generator does?

``onnx.checker`` catches malformed graphs; running the file on onnxruntime next to the
torch generator (eval mode, fp32, CPU) on real inputs catches a graph that is valid
but wrong. Above the tolerance the export is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nectargan.inference.samples import ExportCheckError, torch_outputs
from nectargan.onnx.deps import require

FP32_TOLERANCE = 1e-4
__all__ = ["FP32_TOLERANCE", "ExportCheckError", "check_onnx_file", "torch_outputs"]


def check_onnx_file(
    path: str | Path,
    generator: torch.nn.Module,
    batches: list[tuple[str, np.ndarray]],
    tolerance: float | None = None,
    run_parity: bool = True,
) -> dict:
    """``onnx.checker``, then max |onnxruntime - torch| over ``batches``; raises above ``tolerance``."""
    onnx, ort = require("onnx", "onnxruntime")
    tolerance = FP32_TOLERANCE if tolerance is None else tolerance
    try:
        onnx.checker.check_model(str(path))
    except Exception as exc:
        raise ExportCheckError(f"onnx.checker rejected '{path}': {exc}") from exc
    if not run_parity:
        return {"max_abs_diff": None, "checked": []}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    worst, checked = 0.0, []
    for what, batch in batches:
        got = session.run(None, {name: batch.astype(np.float32)})[0]
        want = torch_outputs(generator, batch)
        if got.shape != want.shape:
            raise ExportCheckError(
                f"'{path}' returned shape {got.shape} for {what}, the generator {want.shape}"
            )
        diff = float(np.abs(got - want).max())
        worst = max(worst, diff)
        checked.append(f"{what} {tuple(batch.shape)}: {diff:.2e}")
    if worst > tolerance:
        raise ExportCheckError(
            f"onnxruntime and torch disagree by up to {worst:.3g} (tolerance {tolerance:g} "
            f"for fp32): {'; '.join(checked)}"
        )
    return {"max_abs_diff": worst, "checked": checked}
