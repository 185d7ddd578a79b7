"""L1, PSNR and SSIM against hand-computed values and a direct numpy SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nectargan import metrics


def _unit_to_model(t: torch.Tensor) -> torch.Tensor:
    """Metrics take [-1, 1] inputs; tests think in [0, 1]."""
    return t * 2 - 1


def _numpy_ssim(a: np.ndarray, b: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """Wang et al. SSIM, valid windows, one channel, written as plainly as possible."""
    coords = np.arange(size) - (size - 1) / 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = 0.01**2, 0.03**2
    h, wd = a.shape
    values = []
    for i in range(h - size + 1):
        for j in range(wd - size + 1):
            pa, pb = a[i : i + size, j : j + size], b[i : i + size, j : j + size]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * pa * pa).sum() - ma**2
            vb = (w * pb * pb).sum() - mb**2
            cov = (w * pa * pb).sum() - ma * mb
            values.append(
                ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(values))


def test_l1_and_psnr_of_a_constant_offset():
    y = torch.full((2, 3, 16, 16), 0.5)
    x = y + 0.1
    assert metrics.l1(_unit_to_model(x), _unit_to_model(y)).tolist() == pytest.approx([0.1, 0.1])
    # MSE 0.01 on a data range of 1 -> 20 dB.
    assert metrics.psnr(_unit_to_model(x), _unit_to_model(y)).tolist() == pytest.approx(
        [20.0, 20.0], abs=1e-3
    )


def test_identical_images_are_perfect_and_finite():
    x = torch.rand(3, 3, 24, 24) * 2 - 1
    assert metrics.l1(x, x).abs().max() == 0
    assert torch.allclose(metrics.ssim(x, x), torch.ones(3))
    psnr = metrics.psnr(x, x)
    assert torch.all(psnr == metrics.PSNR_MAX_DB) and all(math.isfinite(v) for v in psnr.tolist())


def test_ssim_matches_a_direct_numpy_implementation():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(1, 1, 20, 20, generator=gen)
    b = (a + 0.15 * torch.randn(1, 1, 20, 20, generator=gen)).clamp(0, 1)
    ours = float(metrics.ssim(_unit_to_model(a), _unit_to_model(b))[0])
    assert ours == pytest.approx(
        _numpy_ssim(a[0, 0].double().numpy(), b[0, 0].double().numpy()), abs=1e-5
    )


def test_ssim_averages_channels_and_falls_with_noise():
    gen = torch.Generator().manual_seed(1)
    y = torch.rand(1, 3, 32, 32, generator=gen) * 2 - 1
    scores = [
        float(metrics.ssim((y + s * torch.randn(y.shape, generator=gen)).clamp(-1, 1), y)[0])
        for s in (0.05, 0.2, 0.6)
    ]
    assert scores[0] > scores[1] > scores[2]
    per_channel = [float(metrics.ssim(y[:, c : c + 1], y[:, c : c + 1])[0]) for c in range(3)]
    assert per_channel == pytest.approx([1.0, 1.0, 1.0])


def test_ssim_handles_images_smaller_than_the_window():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    out = metrics.ssim(x, x.flip(-1))
    assert out.shape == (2,) and torch.all(out <= 1)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"same shape.*\(1, 3, 8, 8\).*\(1, 3, 8, 9\)"):
        metrics.l1(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))


def test_averager_weights_by_image_count():
    avg = metrics.MetricAverager()
    avg.add({"l1": torch.tensor([1.0, 1.0, 1.0])})
    avg.add({"l1": torch.tensor([5.0])})
    assert avg.count == 4 and avg.means() == {"l1": 2.0}
