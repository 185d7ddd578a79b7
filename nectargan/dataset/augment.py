"""The paired augmentation pipeline: which operation runs, when, and on which image.

Geometric ops (crop, flips, rot90, rotate, elastic, optical distortion) must move A and
B identically or the pair stops lining up. Photometric ops (colour, gamma, blur,
motion blur, grayscale, JPEG, noise) make one side harder and take ``apply_to``
(input by default: the target is what the generator should reproduce exactly);
with ``both`` the same draw is used for A and B. Coarse dropout blanks the same
rectangles in both, as upstream NectarGAN does.

Order: resize -> crop -> flips, rot90 -> colour jitter, gamma, blur, motion blur,
grayscale, JPEG (8-bit) -> tensor -> one warp for rotate, optical distortion and
elastic (reflected edges) -> coarse dropout -> noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from PIL import Image

from nectargan.config.augment_schema import AugmentConfig
from nectargan.dataset import augment_ops as ops
from nectargan.dataset.tensors import to_tensor

Gen = torch.Generator | None
Pair = tuple[Image.Image, Image.Image]

__all__ = ["AugmentConfig", "PairedTransform"]


def _on(apply_to: str, pair: Pair, fn: Callable[[Image.Image], Image.Image]) -> Pair:
    a, b = pair
    if apply_to in ("input", "both"):
        a = fn(a)
    if apply_to in ("target", "both"):
        b = fn(b)
    return a, b


class PairedTransform:
    """Turn an (input, target) PIL pair into (C, H, W) tensors in [-1, 1].

    Training: the pipeline above. Evaluation (train=False): resize to load_size and
    centre crop, nothing random.
    """

    def __init__(self, load_size: int, crop_size: int, config: AugmentConfig, train: bool) -> None:
        if crop_size < 1 or load_size < crop_size:
            raise ValueError(
                f"load_size {load_size} must be >= crop_size {crop_size} (and crop_size >= 1)"
            )
        self.load_size, self.crop_size = load_size, crop_size
        self.config, self.train = config, train

    def __call__(
        self, x: Image.Image, y: Image.Image, gen: Gen = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pair = ops.resize_pair((x, y), self.load_size)
        if not self.train:
            x, y = ops.center_crop_pair(pair, self.crop_size)
            return to_tensor(x), to_tensor(y)
        # Every geometric draw comes first, so switching a photometric op on or off
        # never moves where the pair is cropped, warped or blanked.
        pair = self._crop_and_flip(pair, gen)
        w, h = pair[0].size
        grid = self._warp_grid(h, w, gen)
        cfg = self.config.coarse_dropout
        boxes = (
            ops.dropout_boxes((w, h), cfg.holes, cfg.hole_size, gen)
            if ops.fires(cfg.p, gen)
            else []
        )
        pair = self._photometric(pair, gen)
        if grid is None:
            xt, yt = to_tensor(pair[0]), to_tensor(pair[1])
        else:
            out = ops.warp(ops.pair_to_tensor(pair).unsqueeze(0), grid)[0]
            xt, yt = out.chunk(2)
        if boxes:
            xt, yt = ops.fill_boxes(xt, boxes), ops.fill_boxes(yt, boxes)
        return self._noise(xt, yt, gen)

    def _crop_and_flip(self, pair: Pair, gen: Gen) -> Pair:
        cfg = self.config
        if cfg.random_crop:
            pair = ops.random_crop_pair(pair, self.crop_size, gen)
        else:
            pair = ops.center_crop_pair(pair, self.crop_size)
        if ops.fires(cfg.hflip.p, gen):
            pair = ops.transpose_pair(pair, Image.Transpose.FLIP_LEFT_RIGHT)
        if ops.fires(cfg.vflip.p, gen):
            pair = ops.transpose_pair(pair, Image.Transpose.FLIP_TOP_BOTTOM)
        if ops.fires(cfg.rot90.p, gen):
            pair = ops.transpose_pair(pair, ops.ROT90[ops.randint(0, 2, gen)])
        return pair

    def _warp_grid(self, h: int, w: int, gen: Gen) -> torch.Tensor | None:
        """Rotate, optical distortion and elastic as one grid: one resampling of A and B."""
        cfg = self.config
        rotate = ops.fires(cfg.rotate.p, gen)
        optical = ops.fires(cfg.optical_distortion.p, gen)
        elastic = ops.fires(cfg.elastic.p, gen)
        if not (rotate or optical or elastic):
            return None
        angle = ops.uniform(*cfg.rotate.degrees, gen) if rotate else 0.0
        grid = ops.rotation_grid(h, w, angle)
        if optical:
            k = ops.uniform(*cfg.optical_distortion.distort_limit, gen)
            grid = ops.optical_grid(grid, k, cfg.optical_distortion.mode)
        if elastic:
            grid = grid + ops.elastic_offsets(h, w, cfg.elastic.alpha, cfg.elastic.sigma, gen)
        return grid

    def _photometric(self, pair: Pair, gen: Gen) -> Pair:
        cfg = self.config
        cj = cfg.color_jitter
        if ops.fires(cj.p, gen):
            b, c = ops.uniform(*cj.brightness, gen), ops.uniform(*cj.contrast, gen)
            s, hue = ops.uniform(*cj.saturation, gen), ops.uniform(*cj.hue, gen)
            pair = _on(cj.apply_to, pair, lambda im: ops.color_jitter(im, b, c, s, hue))
        if ops.fires(cfg.gamma.p, gen):
            g = ops.uniform(*cfg.gamma.gamma, gen)
            pair = _on(cfg.gamma.apply_to, pair, lambda im: ops.gamma_curve(im, g))
        if ops.fires(cfg.blur.p, gen):
            sigma = ops.uniform(*cfg.blur.sigma, gen)
            pair = _on(cfg.blur.apply_to, pair, lambda im: ops.gaussian_blur(im, sigma))
        mb = cfg.motion_blur
        if ops.fires(mb.p, gen):
            length = 2 * ops.randint(1, (mb.kernel_limit - 1) // 2, gen) + 1
            angle = ops.uniform(0.0, math.pi, gen)
            pair = _on(mb.apply_to, pair, lambda im: ops.motion_blur(im, length, angle))
        if ops.fires(cfg.grayscale.p, gen):
            pair = _on(cfg.grayscale.apply_to, pair, ops.grayscale)
        if ops.fires(cfg.jpeg.p, gen):
            q = ops.randint(*cfg.jpeg.quality, gen)
            pair = _on(cfg.jpeg.apply_to, pair, lambda im: ops.jpeg_roundtrip(im, q))
        return pair

    def _noise(
        self, xt: torch.Tensor, yt: torch.Tensor, gen: Gen
    ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.config.noise
        if not ops.fires(cfg.p, gen):
            return xt, yt
        # std is a fraction of the full intensity range, which spans 2 in [-1, 1].
        noise = ops.unit_noise(tuple(xt.shape), gen) * (2 * ops.uniform(*cfg.std, gen))
        if cfg.apply_to in ("input", "both"):
            xt = ops.add_noise(xt, noise)
        if cfg.apply_to in ("target", "both"):
            yt = ops.add_noise(yt, noise)
        return xt, yt
