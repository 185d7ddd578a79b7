"""Inputs for an export's self-check: a few real images of the run, else synthetic ones.

Real images exercise the value ranges the model meets in use (a random-noise input
can hide a broken normalisation); synthetic ones stand in when the run's data is
not on this machine. A non-square batch of 2 checks the dynamic axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nectargan.inference.model_info import ModelInfo
from nectargan.trainers.evaluate import eval_dataset

N_REAL = 4


class ExportCheckError(RuntimeError):
    """The exported file is invalid or its outputs differ from the generator's."""


def torch_outputs(generator: torch.nn.Module, batch: np.ndarray) -> np.ndarray:
    device = next(generator.parameters()).device
    with torch.no_grad():
        return generator.eval()(torch.from_numpy(batch).to(device)).float().cpu().numpy()


def real_images(config: Any, hw: tuple[int, int], n: int = N_REAL) -> tuple[np.ndarray | None, str]:
    """Up to ``n`` eval-mode inputs from the run's test, else val split (resized to ``hw``)."""
    for split in ("test", "val"):
        try:
            dataset = eval_dataset(config, split)
        except (OSError, ValueError):
            continue
        batch = []
        for i in range(min(n, len(dataset))):
            try:
                x, _ = dataset[i]
            except (OSError, ValueError):
                continue
            batch.append(x.numpy())
        if batch:
            arr = np.stack(batch)
            if arr.shape[2:] != hw:
                arr = _resize(arr, hw)
            return arr, f"{len(batch)} image(s) of the {split} split"
    return None, ""


def _resize(arr: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    t = torch.nn.functional.interpolate(torch.from_numpy(arr), size=hw, mode="bilinear")
    return t.clamp(-1, 1).numpy()


def synthetic(info: ModelInfo, hw: tuple[int, int], n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, info.channels, *hw)).astype(np.float32)


def check_batches(
    config: Any, info: ModelInfo, hw: tuple[int, int], dynamic: bool
) -> list[tuple[str, np.ndarray]]:
    """``[(description, batch)]``: real (or synthetic) at ``hw``; plus non-square if dynamic."""
    real, where = real_images(config, hw) if config is not None else (None, "")
    batches = (
        [(where, real)] if real is not None else [("4 synthetic images", synthetic(info, hw, 4))]
    )
    if dynamic:
        m = info.size_multiple
        h, w = max(m, hw[0] // m * m), max(m, hw[1] // m * m) + m
        batches.append((f"2 synthetic {h}x{w} images", synthetic(info, (h, w), 2, seed=1)))
    return batches
