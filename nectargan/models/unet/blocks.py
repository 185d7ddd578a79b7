"""Encoder and decoder stages of the U-Net; each halves or doubles the spatial size once."""

from __future__ import annotations

import torch
from torch import nn

from nectargan.models.norm import has_norm, make_norm


class ResidualUnit(nn.Module):
    """Two 3x3 convs plus identity: adds depth without changing shape, so it fits every level."""

    def __init__(self, channels: int, norm: str | None, act: nn.Module) -> None:
        super().__init__()
        bias = not has_norm(norm)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.norm1 = make_norm(norm, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=bias)
        self.norm2 = make_norm(norm, channels)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return self.act(x + h)


def _upsampler(in_ch: int, out_ch: int, mode: str, bias: bool) -> nn.Module:
    """Double H and W; bilinear+conv avoids the checkerboard artefacts of transposed convs."""
    if mode == "transpose":
        return nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=bias)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias),
    )


def down_block(in_ch: int, out_ch: int, norm: str | None, residual: bool) -> nn.Sequential:
    """Strided 4x4 conv -> norm -> LeakyReLU(0.2) [-> residual unit]."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1, bias=not has_norm(norm)),
        make_norm(norm, out_ch),
        nn.LeakyReLU(0.2),
    ]
    if residual:
        layers.append(ResidualUnit(out_ch, norm, nn.LeakyReLU(0.2)))
    return nn.Sequential(*layers)


def up_block(
    in_ch: int, out_ch: int, norm: str | None, residual: bool, upsample: str, dropout: float
) -> nn.Sequential:
    """Upsample -> norm [-> dropout] -> ReLU [-> residual unit]."""
    layers: list[nn.Module] = [
        _upsampler(in_ch, out_ch, upsample, bias=not has_norm(norm)),
        make_norm(norm, out_ch),
    ]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.ReLU())
    if residual:
        layers.append(ResidualUnit(out_ch, norm, nn.ReLU()))
    return nn.Sequential(*layers)


def output_block(in_ch: int, out_ch: int, upsample: str) -> nn.Sequential:
    """Last upsample to full size; Tanh matches targets normalised to [-1, 1]."""
    return nn.Sequential(_upsampler(in_ch, out_ch, upsample, bias=True), nn.Tanh())
