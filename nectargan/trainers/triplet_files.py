"""Writing ``real_A | fake_B | real_B`` triplets as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from nectargan.dataset.tensors import to_uint8
from nectargan.utils.atomic import atomic_writer


def triplet_image(x: Tensor, y_fake: Tensor, y: Tensor) -> Image.Image:
    """One ``(C, H, W)`` input, output and target side by side, as in the dashboard."""
    parts = [to_uint8(t) for t in (x, y_fake, y)]
    channels = {p.shape[2] for p in parts}
    if len(channels) > 1:  # e.g. 1-channel input, 3-channel output: show all in RGB
        parts = [np.repeat(p, 3, axis=2) if p.shape[2] == 1 else p for p in parts]
    row = np.concatenate(parts, axis=1)
    return Image.fromarray(row[:, :, 0] if row.shape[2] == 1 else row)


def save_triplet(path: Path, x: Tensor, y_fake: Tensor, y: Tensor) -> Path:
    """Write the triplet to ``path`` (via a temporary file, so no half-written PNGs)."""
    with atomic_writer(path, fsync=False) as handle:
        triplet_image(x, y_fake, y).save(handle, format="PNG")
    return path
