"""TorchScript export (``torch.jit.trace``): a ``.pt`` that runs with torch alone, no NectarGAN.

Traced, not scripted: the U-Net's forward is plain tensor code, and tracing records
it without the Python size checks, so the traced module accepts any batch and any
multiple of ``2**n_downs`` (other sizes fail inside a conv or cat instead of with our
message). Metadata travels in the archive as ``extra/nectargan.json``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from nectargan.inference.samples import ExportCheckError, torch_outputs

EXTRA_FILE = "nectargan.json"
TOLERANCE = 1e-4


def export_torchscript(
    generator: torch.nn.Module, sample: torch.Tensor, path: str | Path, metadata: dict[str, str]
) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings of the size checks; jit deprecation
        traced = torch.jit.trace(generator.eval(), sample, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={EXTRA_FILE: json.dumps(metadata)})


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, str]]:
    extra = {EXTRA_FILE: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    raw = extra[EXTRA_FILE]
    return module, json.loads(raw) if raw else {}


def check_torchscript_file(
    path: str | Path,
    generator: torch.nn.Module,
    batches: list[tuple[str, np.ndarray]],
    tolerance: float = TOLERANCE,
) -> dict:
    """Reload ``path`` and compare it with the generator on ``batches``."""
    module, _ = load_torchscript(path)
    worst, checked = 0.0, []
    for what, batch in batches:
        with torch.no_grad():
            got = module(torch.from_numpy(batch)).float().numpy()
        diff = float(np.abs(got - torch_outputs(generator, batch)).max())
        worst = max(worst, diff)
        checked.append(f"{what} {tuple(batch.shape)}: {diff:.2e}")
    if worst > tolerance:
        raise ExportCheckError(
            f"the TorchScript module and the generator disagree by up to {worst:.3g}: "
            + "; ".join(checked)
        )
    return {"max_abs_diff": worst, "checked": checked}
