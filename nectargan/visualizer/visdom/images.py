"""Image triplets: cheap checks and snapshots for the training thread, grid and PNG for the engine.

Policies (documented in docs/visualizer.md):

* Accepted: ``torch.Tensor`` of shape (C, H, W) or (N, C, H, W), C = 1 or 3,
  on any device. Floating dtypes (fp32, fp16, bf16, fp64) are read as [-1, 1]
  (a tanh output) and denormalised to [0, 1], clamped; values outside are
  clamped, NaN shows as mid-grey. ``uint8`` is read as [0, 255].
  One channel is shown as grey.
* x, y and z may differ in height and width: each is resized, keeping its
  aspect ratio, to fit a square cell (centred on a dark background). They
  must agree on the batch size.
* A batch shows as rows, one row per sample, at most ``max_rows``
  (default 4); further samples are not shown (and never copied).
* Display size vs pixels: the window is sized so that each cell shows at
  ``image_size`` x ``image_size`` px, with a 2 px gap (width
  ``3 * image_size + 4``, height ``rows * image_size + 2 * (rows - 1)``).
  The PNG itself keeps images at their own resolution, capped at
  ``image_size`` (larger ones are downscaled, never upscaled): the cell is
  ``min(image_size, largest side among x, y, z)`` pixels and the browser
  scales it to the window. Upscaling would only cost time and bytes.
* Encoding: PNG (lossless, the default; see :func:`png_bytes`) or JPEG
  (quality 95, far cheaper to encode and send, but lossy) -- the
  visualizer's ``image_format``.

Everything that costs (dtype conversion, resizing, PNG) runs on the engine's
side; :func:`snapshot` only copies what will be shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from nectargan.config.schema import MAX_IMAGE_SIZE

GAP = 2
_BACKGROUND = 24 / 255
IMAGE_FORMATS = ("png", "jpeg")


@dataclass(frozen=True)
class Triplet:
    """Snapshots of x, y, z (N, C, H, W on the CPU) and how to show them."""

    x: torch.Tensor
    y: torch.Tensor
    z: torch.Tensor
    title: str
    image_size: int


def check_image_size(image_size: object) -> int:
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise TypeError(f"image_size must be an int, got {type(image_size).__name__}")
    if not 0 < image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image_size must be in 1..{MAX_IMAGE_SIZE} pixels, got {image_size}")
    return int(image_size)


def check_image(name: str, t: object) -> int:
    """Validate one image argument; return its batch size. Errors name the argument and shape."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.ndim not in (3, 4):
        raise ValueError(f"{name} must have shape (C, H, W) or (N, C, H, W), got {tuple(t.shape)}")
    if t.shape[-3] not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels (dim -3), got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype == torch.uint8):
        raise TypeError(
            f"{name} must be a floating-point tensor in [-1, 1] or uint8 in [0, 255], got {t.dtype}"
        )
    if t.device.type == "meta":
        raise ValueError(f"{name} is on the meta device and holds no data")
    return 1 if t.ndim == 3 else int(t.shape[0])


def check_triplet(x: object, y: object, z: object, title: object, image_size: object) -> int:
    """Validate an ``update_images`` call; return the image size."""
    named = {"x": x, "y": y, "z": z}
    sizes = {name: check_image(name, t) for name, t in named.items()}
    if len(set(sizes.values())) != 1:
        shapes = ", ".join(f"{n}={tuple(t.shape)}" for n, t in named.items())  # type: ignore[attr-defined]
        raise ValueError(f"x, y and z must have the same batch size, got {shapes}")
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}")
    return check_image_size(image_size)


def snapshot(t: torch.Tensor, max_rows: int, image_size: int) -> torch.Tensor:
    """A detached CPU copy of the rows that will be shown (training thread: keep it cheap).

    On the CPU a plain copy is cheapest. On an accelerator, large images are
    first shrunk to the display size there, so less crosses to the host.
    """
    t = t.detach()
    if t.ndim == 3:
        t = t.unsqueeze(0)
    t = t[:max_rows]
    if t.device.type == "cpu":
        return t.clone(memory_format=torch.contiguous_format)
    if max(t.shape[-2:]) > image_size:
        t = _fit(t.float(), image_size)
    return t.to("cpu")


def denorm(t: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """[-1, 1] (tanh output) -> [0, 1] for display; optionally clamped."""
    out = (t + 1) * 0.5
    return out.clamp(0.0, 1.0) if clamp else out


def to_unit_rgb(t: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) of any accepted dtype -> float32 RGB in [0, 1]."""
    if t.dtype == torch.uint8:
        out = t.float() / 255.0
    else:
        out = denorm(torch.nan_to_num(t.float(), nan=0.0, posinf=1.0, neginf=-1.0))
    return out.expand(-1, 3, -1, -1) if out.shape[1] == 1 else out


def _fit(t: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (N, C, H, W) so the longer side is ``size``, keeping the aspect ratio."""
    h, w = t.shape[-2:]
    scale = size / max(h, w)
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    if new == (h, w):
        return t
    return F.interpolate(t, size=new, mode="bilinear", align_corners=False, antialias=True)


def display_size(triplet: Triplet) -> tuple[int, int]:
    """(width, height) in px at which the window shows the grid: cells of ``image_size``."""
    rows = min(int(t.shape[0]) for t in (triplet.x, triplet.y, triplet.z))
    size = triplet.image_size
    return 3 * size + 2 * GAP, rows * size + GAP * (rows - 1)


def render_grid(triplet: Triplet) -> np.ndarray:
    """Rows of [x | y | z] cells as an (H, W, 3) uint8 array, cells at native resolution."""
    images = [to_unit_rgb(t) for t in (triplet.x, triplet.y, triplet.z)]
    rows = min(int(t.shape[0]) for t in images)
    cell = min(triplet.image_size, max(max(t.shape[-2:]) for t in images))
    grid = torch.full(
        (3, rows * cell + GAP * (rows - 1), 3 * cell + 2 * GAP), _BACKGROUND, dtype=torch.float32
    )
    for col, batch in enumerate(images):
        fitted = _fit(batch[:rows], cell).clamp(0.0, 1.0)
        h, w = fitted.shape[-2:]
        left = col * (cell + GAP) + (cell - w) // 2
        for row in range(rows):
            top = row * (cell + GAP) + (cell - h) // 2
            grid[:, top : top + h, left : left + w] = fitted[row]
    return (grid.permute(1, 2, 0) * 255.0 + 0.5).to(torch.uint8).numpy()
