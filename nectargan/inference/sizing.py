"""Fitting an image of any size to a generator that needs multiples of ``2**n_downs``.

Two strategies, both giving back an output of the input's own size:

* ``pad`` (the default): reflect-pad to the next multiple, run, crop the padding off.
  Every input pixel is processed at its own resolution and the U-Net, being fully
  convolutional, sees the same scale of detail as in training patches; only a border
  strip narrower than one multiple is synthesised. Aspect ratio is never distorted.
* ``resize``: scale to the training crop size (``crop_size`` square), run, scale the
  output back. For inputs that are the training images' kind at another size, where
  the model must see objects at the training scale. Distorts non-square inputs and
  loses detail of large ones, hence not the default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from nectargan.dataset.tensors import to_tensor

MODES = ("pad", "resize")


def next_multiple(value: int, multiple: int) -> int:
    return max(multiple, -(-value // multiple) * multiple)


@dataclass(frozen=True)
class Fitted:
    """A model-ready (C, H, W) float32 array in [-1, 1] and how to undo the fitting."""

    array: np.ndarray
    size: tuple[int, int]  # the original (width, height)
    mode: str

    @property
    def model_hw(self) -> tuple[int, int]:
        return int(self.array.shape[1]), int(self.array.shape[2])


def fit_image(
    img: Image.Image, mode: str, multiple: int, target_hw: tuple[int, int] | None = None
) -> Fitted:
    """``img`` ready for the generator: padded to ``multiple`` or resized to ``target_hw``."""
    if mode not in MODES:
        raise ValueError(f"size mode {mode!r}: expected one of {', '.join(MODES)}")
    size = img.size
    if mode == "resize":
        if target_hw is None:
            raise ValueError("resize needs the model's input size (target_hw)")
        h, w = target_hw
        if img.size != (w, h):
            img = img.resize((w, h), Image.BICUBIC)
        return Fitted(to_tensor(img).numpy(), size, mode)
    arr = to_tensor(img).numpy()
    h, w = arr.shape[1:]
    pad_h, pad_w = next_multiple(h, multiple) - h, next_multiple(w, multiple) - w
    if pad_h or pad_w:
        # Symmetric split keeps the content centred; numpy reflects repeatedly when the
        # pad is wider than the image (tiny inputs), where torch's reflect pad refuses.
        widths = ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))
        arr = np.pad(arr, widths, mode="reflect" if min(h, w) > 1 else "edge")
    return Fitted(np.ascontiguousarray(arr, dtype=np.float32), size, mode)


def unfit_output(out: np.ndarray, fitted: Fitted) -> Image.Image:
    """The generator's (C, H, W) output for ``fitted`` as a PIL image of the input's size.

    Converts in place (``out`` is consumed): a 12 MP output is 144 MB of float32, and
    copies of it per arithmetic step used to outweigh the tiles of tiled inference.
    Same arithmetic as :func:`nectargan.dataset.tensors.to_uint8`, so the same pixels.
    """
    w, h = fitted.size
    if out.dtype != np.float32:
        out = out.astype(np.float32)
    if fitted.mode == "pad":
        ph, pw = out.shape[1] - h, out.shape[2] - w
        out = out[:, ph // 2 : ph // 2 + h, pw // 2 : pw // 2 + w]
    np.clip(out, -1, 1, out=out)
    out += 1
    out *= 127.5
    np.rint(out, out=out)
    arr = out.astype(np.uint8).transpose(1, 2, 0)
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else np.ascontiguousarray(arr))
    if img.size != (w, h):
        img = img.resize((w, h), Image.BICUBIC)
    return img
