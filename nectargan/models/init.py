"""Weight initialisation from the pix2pix paper, shared by every model."""

from __future__ import annotations

from torch import nn

_CONVS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
_NORMS = (nn.BatchNorm2d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)


def _init_one(m: nn.Module, std: float) -> None:
    if isinstance(m, _CONVS):
        nn.init.normal_(m.weight, 0.0, std)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, _NORMS) and getattr(m, "weight", None) is not None:
        # Centred on 1 so a freshly built norm layer starts close to identity.
        nn.init.normal_(m.weight, 1.0, std)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Draw conv weights from N(0, std) and norm scales from N(1, std), zero all biases.

    The paper's small-std init keeps early GAN updates stable; returns ``module`` for chaining.
    """
    if not std > 0:
        raise ValueError(f"init std {std!r} must be a positive number")
    module.apply(lambda m: _init_one(m, std))
    return module
