"""The ``dataloader.augment`` section: fourteen augmentations, each with its own probability.

Every augmentation is an object with ``p`` (the chance it is applied to a pair) and
its parameters. Geometric ones move input and target identically; photometric ones
take ``apply_to`` (input by default, since the target is what the generator must
reproduce). Ranges are ``[min, max]`` pairs and a sample is drawn uniformly from them.
The field descriptions below are what ``docs/config.md`` prints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError
from pydantic_core import PydanticCustomError

from nectargan.config.section import Section
from nectargan.errors import ConfigUserError

ApplyTo = Literal["input", "target", "both"]
AUGMENT_KEY = "dataloader.augment"


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose message is shown as written (the schema's 'nectargan' kind)."""
    return PydanticCustomError("nectargan", message.replace("{", "(").replace("}", ")"))


def _ordered(pair: list[float]) -> list[float]:
    if len(pair) != 2:
        raise _problem(f"expected a range [min, max], got {pair!r}")
    lo, hi = pair
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise _problem(f"expected a range of finite numbers, got {pair!r}")
    if lo > hi:
        raise _problem(f"expected [min, max] with min <= max, got {pair!r} (min > max)")
    return pair


# Lists, not tuples: what JSON holds, and what a strict schema accepts from it.
Range = Annotated[list[float], AfterValidator(_ordered)]
IntRange = Annotated[list[int], AfterValidator(_ordered)]
Probability = Annotated[
    float, Field(ge=0.0, le=1.0, allow_inf_nan=False, description="chance in [0, 1] per pair")
]


def _within(lo: float, hi: float, what: str) -> AfterValidator:
    """Checks a range's ends lie in [lo, hi]; ``Annotated[Range, _within(...)]`` on a field."""

    def check(pair: list) -> list:
        if pair[0] < lo or pair[1] > hi:
            raise _problem(f"expected a {what} range within [{lo}, {hi}], got {pair!r}")
        return pair

    return AfterValidator(check)


class _Aug(Section):
    p: Probability = 0.0


class _Photometric(_Aug):
    apply_to: ApplyTo = Field(
        "input", description="which image it changes: input (A), target (B) or both"
    )


class HFlip(_Aug):
    """Mirror left-right (input and target together)."""

    p: Probability = 0.5


class VFlip(_Aug):
    """Mirror top-bottom (input and target together)."""


class Rot90(_Aug):
    """Turn by 90, 180 or 270 degrees, chosen uniformly (needs square crops)."""


class Rotate(_Aug):
    """Rotate by an angle drawn from ``degrees``, before cropping so the margin hides corners."""

    degrees: Annotated[Range, _within(-180.0, 180.0, "degrees")] = Field(
        [-15.0, 15.0], description="angle range in degrees, within [-180, 180]"
    )


class Elastic(_Aug):
    """Smooth random warp of both images (the same displacement field for A and B)."""

    alpha: float = Field(
        8.0, ge=0.0, le=256.0, allow_inf_nan=False, description="largest displacement, in pixels"
    )
    sigma: float = Field(
        24.0,
        gt=0.0,
        le=1024.0,
        allow_inf_nan=False,
        description="smoothness: distance in pixels over which the displacement changes",
    )


class OpticalDistortion(_Aug):
    """Radial lens distortion of both images: barrel for k > 0, pincushion for k < 0."""

    distort_limit: Annotated[Range, _within(-1.0, 1.0, "distort_limit")] = Field(
        [-0.05, 0.05], description="range of the distortion coefficient k, within [-1, 1]"
    )
    mode: Literal["camera", "fisheye"] = Field(
        "camera", description="camera: r * (1 + k r^2); fisheye: r * (1 + k r)"
    )


class CoarseDropout(_Aug):
    """Black out a few rectangles, at the same place in input and target (upstream's rule)."""

    holes: Annotated[IntRange, _within(1, 64, "holes")] = Field(
        [1, 2], description="range of the number of rectangles, within [1, 64]"
    )
    hole_size: Annotated[Range, _within(0.0, 1.0, "hole_size")] = Field(
        [0.1, 0.2], description="range of each rectangle's side as a fraction of the image side"
    )


class ColorJitter(_Photometric):
    """Random brightness, contrast, saturation (factors) and hue (shift, fraction of a turn)."""

    brightness: Annotated[Range, _within(0.0, 4.0, "factor")] = Field(
        [0.85, 1.15], description="brightness factor range, within [0, 4]"
    )
    contrast: Annotated[Range, _within(0.0, 4.0, "factor")] = Field(
        [0.85, 1.15], description="contrast factor range, within [0, 4]"
    )
    saturation: Annotated[Range, _within(0.0, 4.0, "factor")] = Field(
        [0.85, 1.15], description="saturation factor range, within [0, 4]"
    )
    hue: Annotated[Range, _within(-0.5, 0.5, "hue")] = Field(
        [-0.05, 0.05], description="hue shift range, within [-0.5, 0.5]"
    )


class Gamma(_Photometric):
    """Random gamma curve ``out = in ** gamma`` on [0, 1] intensities."""

    gamma: Annotated[Range, _within(0.05, 20.0, "gamma")] = Field(
        [0.8, 1.25], description="gamma range, within [0.05, 20]"
    )


class Noise(_Photometric):
    """Additive Gaussian noise; std is a fraction of the full intensity range."""

    std: Annotated[Range, _within(0.0, 1.0, "std")] = Field(
        [0.02, 0.08], description="noise std range, within [0, 1]"
    )


class Blur(_Photometric):
    """Gaussian blur with a radius drawn from ``sigma``."""

    sigma: Annotated[Range, _within(0.0, 32.0, "sigma")] = Field(
        [0.5, 1.5], description="blur sigma range in pixels, within [0, 32]"
    )


class MotionBlur(_Photometric):
    """Blur along a random straight line, like a shaken camera."""

    kernel_limit: int = Field(
        7, ge=3, le=63, description="longest streak in pixels (odd lengths from 3 up to this)"
    )


class Grayscale(_Photometric):
    """Replace colour by luminance (kept as 3 channels)."""


class Jpeg(_Photometric):
    """Re-encode as JPEG at a quality drawn from ``quality``, adding its artefacts."""

    quality: Annotated[IntRange, _within(1, 100, "quality")] = Field(
        [60, 95], description="JPEG quality range, within [1, 100]"
    )


GEOMETRIC = ("hflip", "vflip", "rot90", "rotate", "elastic", "optical_distortion")
PHOTOMETRIC = ("color_jitter", "gamma", "noise", "blur", "motion_blur", "grayscale", "jpeg")
AUGMENTATIONS = (*GEOMETRIC, "coarse_dropout", *PHOTOMETRIC)


class AugmentConfig(Section):
    """Training-time augmentation; the defaults are pix2pix's (random crop + horizontal flip)."""

    random_crop: bool = Field(
        True, description="random crop_size crop of the load_size image (false: centre crop)"
    )
    hflip: HFlip = Field(default_factory=HFlip, description="Horizontal flip (geometric).")
    vflip: VFlip = Field(default_factory=VFlip, description="Vertical flip (geometric).")
    rot90: Rot90 = Field(default_factory=Rot90, description="Quarter turns (geometric).")
    rotate: Rotate = Field(default_factory=Rotate, description="Rotation by an angle (geometric).")
    elastic: Elastic = Field(default_factory=Elastic, description="Elastic warp (geometric).")
    optical_distortion: OpticalDistortion = Field(
        default_factory=OpticalDistortion, description="Lens distortion (geometric)."
    )
    coarse_dropout: CoarseDropout = Field(
        default_factory=CoarseDropout, description="Blanked rectangles (both images)."
    )
    color_jitter: ColorJitter = Field(
        default_factory=ColorJitter, description="Colour jitter (photometric)."
    )
    gamma: Gamma = Field(default_factory=Gamma, description="Gamma curve (photometric).")
    noise: Noise = Field(default_factory=Noise, description="Gaussian noise (photometric).")
    blur: Blur = Field(default_factory=Blur, description="Gaussian blur (photometric).")
    motion_blur: MotionBlur = Field(
        default_factory=MotionBlur, description="Motion blur (photometric)."
    )
    grayscale: Grayscale = Field(default_factory=Grayscale, description="Grayscale (photometric).")
    jpeg: Jpeg = Field(default_factory=Jpeg, description="JPEG artefacts (photometric).")

    @classmethod
    def off(cls) -> AugmentConfig:
        """No randomness at all: centre crop and every probability 0."""
        return cls(random_crop=False, hflip=HFlip(p=0.0))

    @classmethod
    def all_on(cls, p: float = 1.0) -> AugmentConfig:
        """Every augmentation at probability ``p`` (benchmarks, previews)."""
        return cls.model_validate({name: {"p": p} for name in AUGMENTATIONS})

    @classmethod
    def from_any(
        cls, value: AugmentConfig | dict[str, Any] | None, key: str = AUGMENT_KEY
    ) -> AugmentConfig:
        """Accept a config, a plain dict (e.g. from JSON) or None for the defaults."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return parse_augment(value, key)
        raise TypeError(
            f"augment must be an AugmentConfig, dict or None, got {type(value).__name__}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (ranges as lists)."""
        return self.model_dump(mode="json")

    def active(self) -> list[str]:
        """Names of the augmentations with p > 0, in pipeline order."""
        return [name for name in AUGMENTATIONS if getattr(self, name).p > 0]


def format_problems(exc: ValidationError, key: str) -> list[str]:
    """One 'dotted.key: message (got value)' line per pydantic error."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"] if not isinstance(part, int)]
        path = ".".join([key, *loc]) if loc else key
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = _unknown_key_message(loc)
        got = "" if err["type"] == "nectargan" else f" (got {err.get('input')!r})"
        lines.append(f"{path}: {msg}{got}")
    return lines


def _unknown_key_message(loc: list[str]) -> str:
    if len(loc) == 1:
        return "unknown augmentation; expected random_crop or one of " + ", ".join(AUGMENTATIONS)
    model = AugmentConfig.model_fields[loc[0]].annotation
    names = getattr(model, "model_fields", {})
    return "unknown parameter; expected one of " + ", ".join(names)


def parse_augment(data: dict[str, Any], key: str = AUGMENT_KEY) -> AugmentConfig:
    """Validate a ``dataloader.augment`` dict; every problem is reported, naming its key."""
    try:
        return AugmentConfig.model_validate(data)
    except ValidationError as exc:
        problems = format_problems(exc, key)
        raise ConfigUserError(
            f"invalid config ({len(problems)} problem(s)):\n  " + "\n  ".join(problems)
        ) from None


def augment_problems(data: Any, key: str = AUGMENT_KEY) -> list[str]:
    """The problems ``parse_augment`` would report, as lines (empty when valid)."""
    try:
        AugmentConfig.model_validate(data)
    except ValidationError as exc:
        return format_problems(exc, key)
    return []


# -- upstream NectarGAN's ``dataloader.augmentations`` ---------------------------------

# upstream prefix -> (our augmentation, {upstream suffix: our parameter (or a [min, max] slot)})
_UPSTREAM: dict[str, tuple[str, dict[str, tuple[str, int | None]]]] = {
    "h_flip": ("hflip", {}),
    "v_flip": ("vflip", {}),
    "rot90": ("rot90", {}),
    "elastic_transform": ("elastic", {"alpha": ("alpha", None), "sigma": ("sigma", None)}),
    "optical_distortion": (
        "optical_distortion",
        {"min": ("distort_limit", 0), "max": ("distort_limit", 1), "mode": ("mode", None)},
    ),
    "coarse_dropout": (
        "coarse_dropout",
        {
            "holes_min": ("holes", 0),
            "holes_max": ("holes", 1),
            "height_min": ("hole_size", 0),
            "height_max": ("hole_size", 1),
            "width_min": ("hole_size", 0),
            "width_max": ("hole_size", 1),
        },
    ),
    "colorjitter": (
        "color_jitter",
        {
            f"{end}_{what}": (what, 0 if end == "min" else 1)
            for what in ("brightness", "contrast", "saturation", "hue")
            for end in ("min", "max")
        },
    ),
    "gaussnoise": ("noise", {"min": ("std", 0), "max": ("std", 1)}),
    "motionblur": ("motion_blur", {"limit": ("kernel_limit", None)}),
    "randgamma": ("gamma", {"min": ("gamma", 0), "max": ("gamma", 1)}),
    "grayscale": ("grayscale", {}),
    "compression": ("jpeg", {"quality_min": ("quality", 0), "quality_max": ("quality", 1)}),
}
_UPSTREAM_IGNORED = {"grayscale_method", "compression_type"}  # one method/format here


def _convert(aug: str, param: str, value: Any) -> Any:
    if aug == "gamma":
        return value / 100.0  # upstream: percent (albumentations' gamma_limit)
    if aug == "motion_blur":
        return max(3, int(value))
    return value


def from_upstream(augmentations: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Our ``augment`` values (dotted keys under it) from upstream's ``{both, input, target}``.

    Returns the values and one line per upstream key that has no counterpart or only an
    approximate one. Photometric ones take ``apply_to`` from their group; under ``both``
    colour jitter uses one draw for A and B, as upstream's shared transform does.
    """
    out: dict[str, Any] = {}
    notes: list[str] = []
    for group, values in augmentations.items():
        if group not in ("both", "input", "target") or not isinstance(values, Mapping):
            notes.append(f"augmentations.{group}: expected both/input/target objects; skipped")
            continue
        used: set[str] = set()
        for prefix, (aug, params) in _UPSTREAM.items():
            chance = values.get(f"{prefix}_chance")
            if chance is None:
                continue
            used.add(f"{prefix}_chance")
            if not chance and f"{aug}.p" in out:
                # Off in this group, already set by another: keep that one.
                used.update(f"{prefix}_{suffix}" for suffix in params)
                continue
            out[f"{aug}.p"] = chance
            if aug in PHOTOMETRIC:
                out[f"{aug}.apply_to"] = group
            elif group != "both" and aug != "coarse_dropout":
                notes.append(
                    f"augmentations.{group}.{prefix}_chance: geometric; applied to A and B alike"
                )
            ranges: dict[str, list[Any]] = {}
            for suffix, (param, slot) in params.items():
                key = f"{prefix}_{suffix}"
                if key not in values:
                    continue
                used.add(key)
                value = _convert(aug, param, values[key])
                if slot is None:
                    out[f"{aug}.{param}"] = value
                else:
                    ranges.setdefault(param, [None, None])
                    current = ranges[param][slot]
                    pick = min if slot == 0 else max
                    ranges[param][slot] = value if current is None else pick(current, value)
            for param, (lo, hi) in ranges.items():
                default = getattr(AugmentConfig.model_fields[aug].default_factory(), param)
                out[f"{aug}.{param}"] = [
                    default[0] if lo is None else lo,
                    default[1] if hi is None else hi,
                ]
            if aug == "elastic" and chance:
                notes.append(
                    f"augmentations.{group}.elastic_transform_alpha: upstream's alpha scales "
                    "unit noise; here it is the largest displacement in pixels, check it"
                )
        for key in values:
            if key in used or key in _UPSTREAM_IGNORED:
                continue
            notes.append(f"augmentations.{group}.{key}: no such augmentation here; dropped")
    return out, notes
