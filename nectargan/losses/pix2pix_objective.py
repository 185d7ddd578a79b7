"""The Pix2pix objective as a loss spec for ``LossManager.init_from_spec``.

``pix2pix(config, subspec)`` returns ``{name: RegisteredLoss}``:

* ``basic``: G_GAN, G_L1 (tag ``'G'``); D_real, D_fake (tag ``'D'``).
* ``extended``: basic + G_L2 (MSE), G_SOBEL, G_LAP (edge/structure losses).
* ``basic+vgg`` / ``extended+vgg``: the above + G_VGG (perceptual; needs
  ``vgg_weights``, or torchvision's VGG19 file in torch's cache).

How the trainer calls them (``x`` = prediction, ``y`` = target)::

    compute_loss_xy("G_GAN", d_fake_logits, torch.ones_like(d_fake_logits), epoch)
    compute_loss_xy("G_L1", y_fake, y, epoch)        # likewise G_L2, G_SOBEL, G_LAP, G_VGG
    compute_loss_xy("D_real", d_real_logits, torch.ones_like(d_real_logits), epoch)
    compute_loss_xy("D_fake", d_fake_logits_detached, torch.zeros_like(...), epoch)

G_GAN, D_real and D_fake are BCE-with-logits on the discriminator's raw
patch logits. The generator objective is the sum of the G terms, the
discriminator objective the sum of the D terms.

Config keys: the ``train.loss`` section of the config schema
(:class:`nectargan.config.schema.LossConfig`, where every default and
description is written; see docs/config.md). A plain mapping works too;
missing keys take the schema's defaults. ``lambda_d`` weights D_real and
D_fake each; 0.5 makes their sum pix2pix's ``(D_real + D_fake) / 2``.
``schedules`` maps a loss name to a ``Schedule`` (or its config dict); a
scheduled loss uses ``schedule(epoch)`` instead of its lambda.

Other keys are ignored (the section may hold unrelated settings), except
unknown ``lambda_*`` keys, which are almost certainly typos and are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nectargan.config.schema import LOSS_SUBSPECS, LossConfig, field_default
from nectargan.losses.losses import (
    DEFAULT_VGG_LAYERS,
    LaplacianLoss,
    SobelLoss,
    VGGPerceptualLoss,
    bce_with_logits_loss,
    l1_loss,
    mse_loss,
)
from nectargan.losses.registered import RegisteredLoss
from nectargan.losses.vgg import find_vgg19_weights
from nectargan.scheduling.schedule import Schedule
from nectargan.utils.numbers import is_number

SUBSPECS: tuple[str, ...] = LOSS_SUBSPECS
# The schema's train.loss defaults (subspec is passed separately).
DEFAULTS: dict[str, Any] = {
    key: field_default(LossConfig, key) for key in LossConfig.model_fields if key != "subspec"
}


def pix2pix(
    config: Mapping[str, Any] | None = None, subspec: str = "basic"
) -> dict[str, RegisteredLoss]:
    """Build the losses of ``subspec``; fails now (not mid-training) on any bad setting."""
    if subspec not in SUBSPECS:
        raise ValueError(f"unknown pix2pix loss subspec {subspec!r}; valid: {list(SUBSPECS)}")
    cfg = _resolve(config)
    base, _, extra = subspec.partition("+")
    terms: dict[str, tuple[Any, float, str]] = {
        "G_GAN": (bce_with_logits_loss, cfg["lambda_gan"], "G"),
        "G_L1": (l1_loss, cfg["lambda_l1"], "G"),
    }
    if base == "extended":
        terms["G_L2"] = (mse_loss, cfg["lambda_l2"], "G")
        terms["G_SOBEL"] = (SobelLoss(), cfg["lambda_sobel"], "G")
        terms["G_LAP"] = (LaplacianLoss(), cfg["lambda_laplacian"], "G")
    if extra == "vgg":
        terms["G_VGG"] = (_vgg_loss(cfg, subspec), cfg["lambda_vgg"], "G")
    terms["D_real"] = (bce_with_logits_loss, cfg["lambda_d"], "D")
    terms["D_fake"] = (bce_with_logits_loss, cfg["lambda_d"], "D")
    schedules = _schedules(cfg["schedules"], terms)
    return {
        name: RegisteredLoss(function=fn, weight=weight, schedule=schedules.get(name), tags=(tag,))
        for name, (fn, weight, tag) in terms.items()
    }


def _resolve(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``config``; every lambda checked to be a number >= 0."""
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise TypeError(f"pix2pix loss config must be a mapping, got {config!r}")
    typos = sorted(k for k in config if str(k).startswith("lambda_") and k not in DEFAULTS)
    if typos:
        valid = [k for k in DEFAULTS if k.startswith("lambda_")]
        raise ValueError(f"unknown loss config keys {typos}; valid lambdas: {valid}")
    cfg = {**DEFAULTS, **{k: v for k, v in config.items() if k in DEFAULTS}}
    for key in DEFAULTS:
        if key.startswith("lambda_"):
            cfg[key] = _check_lambda(key, cfg[key])
    return cfg


def _check_lambda(key: str, value: object) -> float:
    if not is_number(value, finite=True) or value < 0:
        raise ValueError(f"loss config {key!r} must be a finite number >= 0, got {value!r}")
    return float(value)


def vgg_weights_for(config: Mapping[str, Any] | None, subspec: str) -> Path | None:
    """The VGG19 weights file ``subspec`` will load (None without '+vgg').

    Only looks (no read), so a command can check it before creating anything;
    a missing file is a :class:`~nectargan.losses.vgg.VGGWeightsError` naming
    where it looked.
    """
    if not subspec.endswith("+vgg"):
        return None
    path = (config or {}).get("vgg_weights")
    if path is not None and not isinstance(path, str | Path):
        raise TypeError(f"loss config 'vgg_weights' must be a file path, got {path!r}")
    return find_vgg19_weights(path)


def _vgg_loss(cfg: dict[str, Any], subspec: str) -> VGGPerceptualLoss:
    """Load the perceptual loss now, so a missing weights file stops the run at start-up."""
    path = vgg_weights_for(cfg, subspec)
    layers = cfg["vgg_layers"] or DEFAULT_VGG_LAYERS
    if isinstance(layers, str) or not all(isinstance(x, str) for x in layers):
        raise ValueError(f"loss config 'vgg_layers' must be a list of layer names, got {layers!r}")
    return VGGPerceptualLoss(path, layers=list(layers))


def _schedules(raw: object, terms: Mapping[str, Any]) -> dict[str, Schedule]:
    """Turn ``{name: Schedule | dict}`` into Schedules, refusing names this subspec lacks."""
    if not isinstance(raw, Mapping):
        raise TypeError(f"loss config 'schedules' must map loss names to schedules, got {raw!r}")
    unknown = sorted(set(raw) - set(terms))
    if unknown:
        raise ValueError(
            f"loss config 'schedules' names unknown losses {unknown}; losses: {list(terms)}"
        )
    return {name: _as_schedule(name, value) for name, value in raw.items()}


def _as_schedule(name: str, value: object) -> Schedule:
    if isinstance(value, Schedule):
        return value
    if isinstance(value, Mapping):
        return Schedule.from_dict(dict(value))
    raise TypeError(
        f"schedule for loss {name!r} must be a Schedule or a dict of its arguments, got {value!r}"
    )
