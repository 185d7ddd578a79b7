"""The augmentation operations themselves: 8-bit PIL for most, one torch warp for the rest.

Why this mix (measured, see docs/data.md): PIL's C loops on uint8 are the fastest
thing we have for resize/crop/flip, colour matrices, LUT curves, blur and JPEG.
Rotation, elastic and optical distortion become one sampling grid and one
``grid_sample`` on input and target stacked, so both move identically in one pass
(and rotation costs a quarter of PIL's bilinear rotate). Every random draw comes from one ``torch.Generator`` (or
torch's global RNG, which DataLoader seeds per worker), so runs are reproducible.
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter, ImageStat

Gen = torch.Generator | None
Pair = tuple[Image.Image, Image.Image]


# -- random draws ----------------------------------------------------------------------


def rand(gen: Gen) -> float:
    return float(torch.rand((), generator=gen))


def uniform(lo: float, hi: float, gen: Gen) -> float:
    return lo + (hi - lo) * rand(gen)


def randint(lo: int, hi: int, gen: Gen) -> int:
    """Uniform integer in [lo, hi]."""
    return int(torch.randint(lo, hi + 1, (), generator=gen))


def fires(p: float, gen: Gen) -> bool:
    """True with probability p; p == 0 draws nothing, so disabled ops never shift the stream."""
    return p > 0 and (p >= 1 or rand(gen) < p)


# -- shared geometry (PIL) -------------------------------------------------------------


def resize_pair(pair: Pair, size: int) -> Pair:
    a, b = (
        im if im.size == (size, size) else im.resize((size, size), Image.BICUBIC) for im in pair
    )
    return a, b


def crop_pair(pair: Pair, size: int, left: int, top: int) -> Pair:
    box = (left, top, left + size, top + size)
    return pair[0].crop(box), pair[1].crop(box)


def center_crop_pair(pair: Pair, size: int) -> Pair:
    w, h = pair[0].size
    return crop_pair(pair, size, (w - size) // 2, (h - size) // 2)


def random_crop_pair(pair: Pair, size: int, gen: Gen) -> Pair:
    w, h = pair[0].size
    return crop_pair(pair, size, randint(0, w - size, gen), randint(0, h - size, gen))


def transpose_pair(pair: Pair, method: Image.Transpose) -> Pair:
    return pair[0].transpose(method), pair[1].transpose(method)


ROT90 = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)


# -- shared warp (torch grid_sample) ---------------------------------------------------


def rotation_grid(h: int, w: int, degrees: float = 0.0) -> torch.Tensor:
    """(1, H, W, 2) sampling grid in grid_sample's [-1, 1] coordinates (x, y), turned about
    the centre by ``degrees`` (in pixel space, so a non-square image is not sheared)."""
    t = math.radians(degrees)
    cos, sin = math.cos(t), math.sin(t)
    theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]]).unsqueeze(0)
    return F.affine_grid(theta, [1, 1, h, w], align_corners=False)


def optical_grid(grid: torch.Tensor, k: float, mode: str) -> torch.Tensor:
    """Radial distortion about the centre: sample the source at r (1 + k r^2) (fisheye: r (1 + k r)).

    Radial, so it commutes with a rotation about the same centre."""
    r2 = (grid**2).sum(dim=-1, keepdim=True) / 2  # corners at r = 1
    return grid * (1 + k * (r2 if mode == "camera" else r2.sqrt()))


# Elastic fields are drawn on a coarse lattice, smoothed bicubically up to this side,
# then bilinearly to full size: smooth like blurred full-size noise, at a fraction of the cost.
_FIELD_SIDE = 64


def elastic_offsets(h: int, w: int, alpha: float, sigma: float, gen: Gen) -> torch.Tensor:
    """A smooth random displacement field of at most ``alpha`` px, in grid units (1, H, W, 2)."""
    gh, gw = max(2, round(h / sigma) + 1), max(2, round(w / sigma) + 1)
    field = torch.randn((1, 2, gh, gw), generator=gen)
    mid = (min(h, _FIELD_SIDE), min(w, _FIELD_SIDE))
    field = F.interpolate(field, size=mid, mode="bicubic", align_corners=True)
    field = F.interpolate(field, size=(h, w), mode="bilinear", align_corners=True)
    field = field * (alpha / field.abs().amax().clamp_min(1e-6))
    scale = torch.tensor([2.0 / w, 2.0 / h]).view(1, 2, 1, 1)
    return (field * scale).permute(0, 2, 3, 1)


def warp(stacked: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Resample (1, C, H, W) through ``grid``; edges reflect, so no black corners appear."""
    return F.grid_sample(
        stacked, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )


# -- photometry (PIL, one image) -------------------------------------------------------


def _clip_lut(values: np.ndarray) -> list[int]:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8).tolist()


_LUMA = np.array([0.299, 0.587, 0.114])


def _hue_matrix(turns: float) -> np.ndarray:
    """Rotation of RGB about the grey axis: shifts hue, keeps greys grey."""
    t = 2 * math.pi * turns
    skew = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]]) / math.sqrt(3)
    return math.cos(t) * np.eye(3) + (1 - math.cos(t)) / 3 * np.ones((3, 3)) + math.sin(t) * skew


def color_jitter(img: Image.Image, b: float, c: float, s: float, hue: float) -> Image.Image:
    """Brightness, contrast, saturation, hue, folded into one 3x4 colour matrix (one pass).

    brightness scales; contrast blends with the mean grey; saturation blends with the
    pixel's luma; hue rotates about the grey axis.
    """
    mean = ImageStat.Stat(img.convert("L")).mean[0]
    if img.mode != "RGB":  # no colour to saturate or turn
        v = np.arange(256, dtype=np.float32)
        lut = _clip_lut(c * b * v + (1 - c) * b * mean)
        return img.point(lut * len(img.getbands()))
    sat = s * np.eye(3) + (1 - s) * np.tile(_LUMA, (3, 1))
    m = c * b * (_hue_matrix(hue) @ sat)
    offset = (1 - c) * b * mean
    matrix = tuple(float(v) for row in m for v in (*row, offset))
    return img.convert("RGB", matrix)


def gamma_curve(img: Image.Image, gamma: float) -> Image.Image:
    v = np.arange(256, dtype=np.float64) / 255.0
    return img.point(_clip_lut(255.0 * v**gamma) * len(img.getbands()))


def gaussian_blur(img: Image.Image, sigma: float) -> Image.Image:
    return img if sigma <= 0 else img.filter(ImageFilter.GaussianBlur(radius=sigma))


def motion_blur(img: Image.Image, length: int, angle: float) -> Image.Image:
    """Average of ``length`` copies shifted along a line at ``angle`` radians (edges repeat)."""
    arr = np.asarray(img)
    squeeze = arr.ndim == 2
    if squeeze:
        arr = arr[:, :, None]
    r = length // 2
    padded = np.pad(arr, ((r, r), (r, r), (0, 0)), mode="edge").astype(np.uint16)
    h, w = arr.shape[:2]
    acc = np.zeros(arr.shape, np.uint16)  # 63 * 255 fits in uint16
    for i in range(length):
        t = i - r
        dx, dy = round(t * math.cos(angle)), round(t * math.sin(angle))
        acc += padded[r + dy : r + dy + h, r + dx : r + dx + w]
    out = ((acc + length // 2) // length).astype(np.uint8)
    return Image.fromarray(out[:, :, 0] if squeeze else out, img.mode)


def grayscale(img: Image.Image) -> Image.Image:
    return img if img.mode == "L" else img.convert("L").convert(img.mode)


def jpeg_roundtrip(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as out:
        out.load()
        return out.convert(img.mode)


# -- both images, same place -----------------------------------------------------------


def dropout_boxes(
    size: tuple[int, int], holes: tuple[int, int], frac: tuple[float, float], gen: Gen
) -> list[tuple[int, int, int, int]]:
    w, h = size
    boxes = []
    for _ in range(randint(holes[0], holes[1], gen)):
        bw = max(1, round(uniform(*frac, gen) * w))
        bh = max(1, round(uniform(*frac, gen) * h))
        left, top = randint(0, w - bw, gen), randint(0, h - bh, gen)
        boxes.append((left, top, left + bw - 1, top + bh - 1))
    return boxes


def fill_boxes(t: torch.Tensor, boxes: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """Set each (left, top, right, bottom) box, inclusive, to black (-1) in a (.., H, W) tensor."""
    for left, top, right, bottom in boxes:
        t[..., top : bottom + 1, left : right + 1] = -1.0
    return t


def add_noise(t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return (t + noise).clamp_(-1.0, 1.0)


# One bank of unit Gaussian noise per shape and process, twice the image's size:
# a window at a random offset, with a random sign, is a fresh iid Gaussian field at
# a fraction of the cost of drawing 200,000 normals per pair.
_NOISE_BANKS: dict[tuple[int, int, int], torch.Tensor] = {}


def unit_noise(shape: tuple[int, int, int], gen: Gen) -> torch.Tensor:
    """A (C, H, W) field of standard normal values."""
    c, h, w = shape
    bank = _NOISE_BANKS.get(shape)
    if bank is None:
        bank = torch.randn((c, 2 * h, 2 * w), generator=torch.Generator().manual_seed(h * w + c))
        _NOISE_BANKS[shape] = bank
    top, left = randint(0, h, gen), randint(0, w, gen)
    sign = 1.0 if rand(gen) < 0.5 else -1.0
    return bank[:, top : top + h, left : left + w] * sign


def pair_to_tensor(pair: Pair) -> torch.Tensor:
    """Input and target as one (2C, H, W) float tensor in [-1, 1] (one conversion)."""
    arrs = [np.asarray(im) for im in pair]
    arrs = [a[:, :, None] if a.ndim == 2 else a for a in arrs]
    stacked = torch.from_numpy(np.concatenate(arrs, axis=2))
    return stacked.permute(2, 0, 1).float().div_(127.5).sub_(1.0)
