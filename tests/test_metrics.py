"""L1, PSNR and SSIM against hand-computed values and scikit-image's implementations."""

from __future__ import annotations

import math

import pytest
import torch

from nectargan import metrics


def _unit_to_model(t: torch.Tensor) -> torch.Tensor:
    """Metrics take [-1, 1] inputs; tests think in [0, 1]."""
    return t * 2 - 1


def _skimage_metrics():
    """scikit-image's SSIM and PSNR: an independent implementation (a test-only dependency)."""
    import skimage.metrics

    return skimage.metrics


def _images(seed: int, shape: tuple[int, ...], noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A random [0, 1] batch and a noisy copy of it."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(*shape, generator=gen)
    return a, (a + noise * torch.randn(*shape, generator=gen)).clamp(0, 1)


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


@pytest.mark.parametrize(
    ("seed", "shape", "noise"),
    [(0, (1, 1, 20, 20), 0.15), (1, (2, 3, 32, 24), 0.05), (2, (1, 3, 48, 48), 0.4)],
)
def test_ssim_matches_scikit_image(seed, shape, noise):
    sk = _skimage_metrics()
    a, b = _images(seed, shape, noise)
    ours = metrics.ssim(_unit_to_model(a), _unit_to_model(b)).tolist()
    # Wang et al.'s settings: 11x11 Gaussian window (sigma 1.5), population covariance
    theirs = [
        sk.structural_similarity(
            a[i].double().numpy(),
            b[i].double().numpy(),
            channel_axis=0,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        for i in range(shape[0])
    ]
    assert ours == pytest.approx(theirs, abs=1e-5)


@pytest.mark.parametrize(("seed", "noise"), [(3, 0.02), (4, 0.1), (5, 0.5)])
def test_psnr_matches_scikit_image(seed, noise):
    sk = _skimage_metrics()
    a, b = _images(seed, (2, 3, 16, 16), noise)
    ours = metrics.psnr(_unit_to_model(b), _unit_to_model(a)).tolist()
    theirs = [
        sk.peak_signal_noise_ratio(a[i].double().numpy(), b[i].double().numpy(), data_range=1.0)
        for i in range(2)
    ]
    assert ours == pytest.approx(theirs, abs=1e-3)


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
