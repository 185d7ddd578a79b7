"""Image quality metrics for evaluating a generator: L1, PSNR and SSIM.

All functions take batches ``(N, C, H, W)`` in the model's ``[-1, 1]`` range
and measure them after mapping to ``[0, 1]``, the range the usual PSNR/SSIM
conventions (data range 1) assume. Each returns one value per image, so
callers can average over a whole split without keeping the images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
# PSNR of identical images is infinite; capping keeps averages and JSON finite.
PSNR_MAX_DB = 100.0


def _check_pair(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(
            f"metrics need two (N, C, H, W) batches of the same shape, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    return to_unit(x.detach().float()), to_unit(y.detach().float())


def to_unit(t: Tensor) -> Tensor:
    """``[-1, 1]`` -> ``[0, 1]``, clamped (a generator may overshoot slightly under bf16)."""
    return ((t + 1) * 0.5).clamp(0, 1)


def l1(x: Tensor, y: Tensor) -> Tensor:
    """Mean absolute error per image, in ``[0, 1]`` units."""
    x, y = _check_pair(x, y)
    return (x - y).abs().flatten(1).mean(1)


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """Peak signal-to-noise ratio per image in dB (data range 1), capped at 100 dB."""
    x, y = _check_pair(x, y)
    mse = (x - y).pow(2).flatten(1).mean(1)
    floor = 10 ** (-PSNR_MAX_DB / 10)
    return -10 * torch.log10(mse.clamp_min(floor))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """Normalised 2-D Gaussian kernel, ``(size, size)``."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).float()


def ssim(x: Tensor, y: Tensor, window_size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """Structural similarity per image (Wang et al. 2004), averaged over channels.

    Local statistics use a Gaussian window over the valid region (no padding),
    per channel. Images smaller than the window use a window as large as fits
    (odd size), with sigma shrunk in proportion.
    """
    x, y = _check_pair(x, y)
    n, c, h, w = x.shape
    size = min(window_size, h, w)
    size -= 1 - size % 2  # odd, so the window has a centre
    if size < window_size:
        sigma = sigma * size / window_size
    kernel = gaussian_window(size, sigma).to(x.device).expand(c, 1, size, size)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, kernel, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return ssim_map.flatten(1).mean(1)


def all_metrics(x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """``{'l1', 'psnr', 'ssim'}`` per image for a prediction ``x`` and target ``y``."""
    return {"l1": l1(x, y), "psnr": psnr(x, y), "ssim": ssim(x, y)}


class MetricAverager:
    """Running per-image means, so a split is measured batch by batch."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, per_image: dict[str, Tensor]) -> None:
        for name, values in per_image.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(values.double().sum())
        self.count += len(next(iter(per_image.values())))

    def means(self) -> dict[str, float]:
        if not self.count:
            return {name: math.nan for name in self.sums}
        return {name: total / self.count for name, total in self.sums.items()}
