"""PatchGAN: classifies each overlapping patch of an (x, y) pair as real or fake."""

from __future__ import annotations

import torch
from torch import nn

from nectargan.models.init import init_weights
from nectargan.models.norm import check_norm, has_norm, make_norm
from nectargan.utils.numbers import check_positive_ints

KERNEL = 4
PADDING = 1


def _conv_strides(n_layers: int) -> list[int]:
    """n_layers stride-2 convs, one stride-1 conv, then the stride-1 conv that emits logits."""
    return [2] * n_layers + [1, 1]


def receptive_field(n_layers: int = 3) -> int:
    """Side in pixels of the input patch that one output logit sees (70 at n_layers=3)."""
    if n_layers < 0:
        raise ValueError(f"n_layers must be >= 0, got {n_layers}")
    rf = 1
    for stride in reversed(_conv_strides(n_layers)):
        rf = (rf - 1) * stride + KERNEL
    return rf


def _output_side(side: int, n_layers: int) -> int:
    for stride in _conv_strides(n_layers):
        side = (side + 2 * PADDING - KERNEL) // stride + 1
    return side


def min_input_size(n_layers: int = 3) -> int:
    """Smallest H/W that still yields at least a 1x1 grid of patch logits."""
    side = 1
    while _output_side(side, n_layers) < 1:
        side += 1
    return side


def _conv_block(in_ch: int, out_ch: int, stride: int, norm: str | None) -> list[nn.Module]:
    return [
        nn.Conv2d(in_ch, out_ch, KERNEL, stride=stride, padding=PADDING, bias=not has_norm(norm)),
        make_norm(norm, out_ch),
        nn.LeakyReLU(0.2),
    ]


class PatchGANDiscriminator(nn.Module):
    """Conditional discriminator: ``forward(x, y)`` concatenates input and output on channels.

    Returns a (N, 1, H', W') map of raw logits (no sigmoid, so BCE-with-logits or LSGAN
    losses can both be used). Defaults give the classic 70x70 receptive field.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        max_channels: int = 512,
        n_layers: int = 3,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_positive_ints(
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            max_channels=max_channels,
            n_layers=n_layers,
        )
        if max_channels < base_channels:
            raise ValueError(
                f"max_channels {max_channels} must be >= base_channels {base_channels}"
            )
        check_norm(norm)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.n_layers, self.norm = n_layers, norm
        self.net = self._build(base_channels, max_channels)
        init_weights(self)

    def _build(self, base: int, cap: int) -> nn.Sequential:
        def width(i: int) -> int:
            return min(base * 2**i, cap)

        # No norm on the first layer: normalising raw pixels would discard their scale.
        layers = _conv_block(self.in_channels + self.out_channels, width(0), 2, None)
        for i in range(1, self.n_layers):
            layers += _conv_block(width(i - 1), width(i), 2, self.norm)
        layers += _conv_block(width(self.n_layers - 1), width(self.n_layers), 1, self.norm)
        layers.append(nn.Conv2d(width(self.n_layers), 1, KERNEL, stride=1, padding=PADDING))
        return nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.n_layers)

    def output_shape(self, height: int, width: int) -> tuple[int, int]:
        """Size of the logit map for an input of (height, width)."""
        return _output_side(height, self.n_layers), _output_side(width, self.n_layers)

    def _check_inputs(self, x: torch.Tensor, y: torch.Tensor) -> None:
        for name, t, ch, attr in (
            ("x", x, self.in_channels, "in_channels"),
            ("y", y, self.out_channels, "out_channels"),
        ):
            if t.dim() != 4:
                raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(t.shape)}")
            if t.shape[1] != ch:
                raise ValueError(f"{name} has {t.shape[1]} channels, expected {attr}={ch}")
        if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
            raise ValueError(
                f"x {tuple(x.shape)} and y {tuple(y.shape)} must share batch size and H, W"
            )
        smallest = min_input_size(self.n_layers)
        if min(x.shape[2:]) < smallest:
            raise ValueError(
                f"input {x.shape[2]}x{x.shape[3]} is too small for n_layers={self.n_layers}; "
                f"H and W must be >= {smallest}"
            )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check_inputs(x, y)
        return self.net(torch.cat([x, y], dim=1))
