"""The ``dataloader.augment`` section: training-time augmentation of the input/target pairs.

Kept in its own file because the augmentation set grows independently of the
rest of the config; :mod:`nectargan.config.schema` only embeds
:class:`AugmentConfig`. ``from_upstream`` maps upstream NectarGAN's
``augmentations`` block onto these keys, so both change together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from nectargan.config.section import Section


class AugmentConfig(Section):
    """Random flips, rotation and input-only photometric noise (pix2pix uses h-flip only)."""

    hflip: bool = Field(True, description="Flip A and B left-right together, half of the time.")
    vflip: bool = Field(False, description="Flip A and B upside down together, half of the time.")
    rotate_degrees: float = Field(
        0.0,
        ge=0,
        le=180,
        description="Rotate A and B by the same random angle up to this, degrees.",
    )
    color_jitter: float = Field(
        0.0, ge=0, lt=1, description="Input-only brightness/contrast/saturation jitter strength."
    )
    noise_std: float = Field(
        0.0, ge=0, description="Input-only Gaussian noise, standard deviation in [-1, 1] units."
    )
    blur_sigma: float = Field(
        0.0,
        ge=0,
        description="Input-only Gaussian blur (half of the time) up to this radius, px; 0: off.",
    )


def from_upstream(augmentations: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Our ``augment`` values from upstream's ``{"both": {...}, "input": {...}, ...}``.

    Returns the values and one line per upstream key that has no counterpart
    (or only an approximate one), saying why. Keys left at upstream's "off"
    value need no counterpart and are not reported.
    """
    out: dict[str, Any] = {}
    notes: list[str] = []
    both = augmentations.get("both") or {}
    inputs = augmentations.get("input") or {}
    for key, ours in (("h_flip_chance", "hflip"), ("v_flip_chance", "vflip")):
        if key in both:
            chance = both[key]
            out[ours] = bool(chance)
            if chance not in (0, 0.5):
                notes.append(
                    f"augmentations.both.{key}={chance!r}: ours flips with chance 0.5 when "
                    f"dataloader.augment.{ours} is true; set to {bool(chance)}"
                )
    if inputs.get("colorjitter_chance") or both.get("colorjitter_chance"):
        out["color_jitter"] = 0.15
        notes.append(
            "augmentations.*.colorjitter_*: ours has one strength for brightness, contrast and "
            "saturation, always applied; set dataloader.augment.color_jitter=0.15 (upstream's "
            "default 0.85..1.15 range)"
        )
    if inputs.get("gaussnoise_chance"):
        notes.append(
            "augmentations.input.gaussnoise_*: upstream's noise is a variance range in pixel "
            "units with a chance; set dataloader.augment.noise_std by hand"
        )
    if inputs.get("motionblur_chance"):
        notes.append(
            "augmentations.input.motionblur_*: no motion blur here; dataloader.augment.blur_sigma "
            "is a Gaussian blur, left off"
        )
    handled = {"h_flip_chance", "v_flip_chance", "colorjitter_chance", "gaussnoise_chance"}
    handled |= {"motionblur_chance"}
    for group, values in augmentations.items():
        if not isinstance(values, Mapping):
            notes.append(f"augmentations.{group}: expected an object, got {values!r}; skipped")
            continue
        for key, value in values.items():
            if key in handled or not key.endswith("_chance") or not value:
                continue
            notes.append(
                f"augmentations.{group}.{key}={value!r}: no such augmentation here; dropped"
            )
    return out, notes
