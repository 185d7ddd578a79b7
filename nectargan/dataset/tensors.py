"""PIL images <-> tensors in [-1, 1], the one place the pixel scaling is written.

Apart from ``io`` (files and PIL images), which stays torch-free for the commands
that only look at files (``data download``'s layout check, ``--help``).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image -> float32 (C, H, W) tensor in [-1, 1]."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.transpose(2, 0, 1).copy()).div_(127.5).sub_(1.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor in [-1, 1] -> (H, W, C) uint8 array, e.g. for saving or display."""
    arr = ((t.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return arr.permute(1, 2, 0).numpy()
