"""One place that turns a norm name into a layer, so both models accept the same names."""

from __future__ import annotations

from torch import nn

# "instance_noaffine": instance norm without learnable scale/shift, torch's default and the
# one upstream NectarGAN's networks use (so an imported upstream config builds its network).
NORMS = ("batch", "instance", "instance_noaffine", "none")


def check_norm(norm: str) -> str:
    """Reject unknown norm names early, before any layer is built."""
    if norm not in NORMS:
        raise ValueError(f"norm {norm!r} is not supported; expected one of {', '.join(NORMS)}")
    return norm


def make_norm(norm: str | None, channels: int) -> nn.Module:
    """Build the norm layer; ``None`` or 'none' gives an identity (used where maps may be 1x1)."""
    if norm is None or check_norm(norm) == "none":
        return nn.Identity()
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    # "instance": affine, so it has the same learnable scale/shift as batch norm.
    affine = norm == "instance"
    return nn.InstanceNorm2d(channels, affine=affine, track_running_stats=False)


def has_norm(norm: str | None) -> bool:
    """Whether a conv followed by this norm can drop its bias (the norm re-centres anyway)."""
    return norm is not None and norm != "none"
