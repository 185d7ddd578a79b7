"""Paired augmentations: geometry is shared by input and target, photometry touches the input only.

Geometric ops (resize, crop, flip, rotate) must move A and B identically or the pair stops
lining up; photometric ops (jitter, blur, noise) only make the *input* harder, since the
target is what the generator should reproduce exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from PIL import Image, ImageEnhance, ImageFilter

from nectargan.dataset.io import to_tensor

Pair = tuple[Image.Image, Image.Image]


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation settings; the defaults are pix2pix's (random crop + h-flip)."""

    random_crop: bool = True  # False: centre crop (still resized to load_size first)
    hflip_p: float = 0.5
    vflip_p: float = 0.0
    rotate_deg: float = 0.0  # max |angle|, same angle for A and B
    jitter: float = 0.0  # brightness/contrast/saturation strength in [0, 1), input only
    blur_p: float = 0.0  # probability of Gaussian blur on the input
    blur_sigma: float = 1.0  # max blur radius in pixels
    noise_std: float = 0.0  # Gaussian noise added to the input, in [-1, 1] units

    def __post_init__(self) -> None:
        for name in ("hflip_p", "vflip_p", "blur_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"augment {name} {value!r} must be a probability in [0, 1]")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"augment jitter {self.jitter!r} must be in [0, 1)")
        for name in ("rotate_deg", "blur_sigma", "noise_std"):
            if getattr(self, name) < 0:
                raise ValueError(f"augment {name} {getattr(self, name)!r} must be >= 0")

    @classmethod
    def off(cls) -> AugmentConfig:
        """No randomness at all: centre crop, no flips, no photometric changes."""
        return cls(random_crop=False, hflip_p=0.0)

    @classmethod
    def from_any(cls, value: AugmentConfig | dict[str, Any] | None) -> AugmentConfig:
        """Accept a config, a plain dict (e.g. from JSON) or None for the defaults."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            allowed = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise ValueError(
                    f"unknown augment option(s) {', '.join(unknown)}; "
                    f"expected some of {', '.join(sorted(allowed))}"
                )
            return cls(**value)
        raise TypeError(
            f"augment must be an AugmentConfig, dict or None, got {type(value).__name__}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rand(gen: torch.Generator | None) -> float:
    return float(torch.rand((), generator=gen))


def _randint(high: int, gen: torch.Generator | None) -> int:
    """Uniform integer in [0, high]."""
    return int(torch.randint(0, high + 1, (), generator=gen))


def _uniform(lo: float, hi: float, gen: torch.Generator | None) -> float:
    return lo + (hi - lo) * _rand(gen)


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


def random_crop_pair(pair: Pair, size: int, gen: torch.Generator | None) -> Pair:
    w, h = pair[0].size
    return crop_pair(pair, size, _randint(w - size, gen), _randint(h - size, gen))


def flip_pair(pair: Pair, method: Image.Transpose) -> Pair:
    return pair[0].transpose(method), pair[1].transpose(method)


def rotate_pair(pair: Pair, angle: float) -> Pair:
    return pair[0].rotate(angle, Image.BILINEAR), pair[1].rotate(angle, Image.BILINEAR)


def jitter_image(img: Image.Image, strength: float, gen: torch.Generator | None) -> Image.Image:
    """Random brightness, contrast and saturation, each by a factor in [1-s, 1+s]."""
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhancer(img).enhance(_uniform(1 - strength, 1 + strength, gen))
    return img


def blur_image(img: Image.Image, max_sigma: float, gen: torch.Generator | None) -> Image.Image:
    return img.filter(ImageFilter.GaussianBlur(radius=_uniform(0.1, max(0.1, max_sigma), gen)))


def add_noise(t: torch.Tensor, std: float, gen: torch.Generator | None) -> torch.Tensor:
    noise = torch.randn(t.shape, generator=gen, dtype=t.dtype)
    return (t + noise * std).clamp_(-1.0, 1.0)


class PairedTransform:
    """Turn an (input, target) PIL pair into (C, H, W) tensors in [-1, 1].

    Training: resize to load_size, shared geometric ops, crop_size crop, input-only photometry.
    Evaluation (train=False): resize to load_size and centre crop, nothing random.
    """

    def __init__(self, load_size: int, crop_size: int, config: AugmentConfig, train: bool) -> None:
        if crop_size < 1 or load_size < crop_size:
            raise ValueError(
                f"load_size {load_size} must be >= crop_size {crop_size} (and crop_size >= 1)"
            )
        self.load_size, self.crop_size = load_size, crop_size
        self.config, self.train = config, train

    def __call__(
        self, x: Image.Image, y: Image.Image, gen: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pair = resize_pair((x, y), self.load_size)
        if not self.train:
            x, y = center_crop_pair(pair, self.crop_size)
            return to_tensor(x), to_tensor(y)
        x, y = self._geometric(pair, gen)
        x = self._photometric(x, gen)
        xt = to_tensor(x)
        if self.config.noise_std > 0:
            xt = add_noise(xt, self.config.noise_std, gen)
        return xt, to_tensor(y)

    def _geometric(self, pair: Pair, gen: torch.Generator | None) -> Pair:
        cfg = self.config
        if cfg.rotate_deg > 0:
            # Rotate before cropping so the crop margin hides most of the empty corners.
            pair = rotate_pair(pair, _uniform(-cfg.rotate_deg, cfg.rotate_deg, gen))
        if cfg.random_crop:
            pair = random_crop_pair(pair, self.crop_size, gen)
        else:
            pair = center_crop_pair(pair, self.crop_size)
        if cfg.hflip_p > 0 and _rand(gen) < cfg.hflip_p:
            pair = flip_pair(pair, Image.Transpose.FLIP_LEFT_RIGHT)
        if cfg.vflip_p > 0 and _rand(gen) < cfg.vflip_p:
            pair = flip_pair(pair, Image.Transpose.FLIP_TOP_BOTTOM)
        return pair

    def _photometric(self, img: Image.Image, gen: torch.Generator | None) -> Image.Image:
        cfg = self.config
        if cfg.jitter > 0:
            img = jitter_image(img, cfg.jitter, gen)
        if cfg.blur_p > 0 and _rand(gen) < cfg.blur_p:
            img = blur_image(img, cfg.blur_sigma, gen)
        return img
