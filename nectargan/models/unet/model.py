"""U-Net generator with skip connections between mirrored encoder/decoder levels."""

from __future__ import annotations

import torch
from torch import nn

from nectargan.models.init import init_weights
from nectargan.models.norm import check_norm
from nectargan.models.unet.blocks import down_block, output_block, up_block
from nectargan.utils.numbers import check_positive_ints

BLOCK_TYPES = ("plain", "residual")
UPSAMPLE_MODES = ("transpose", "bilinear")
# pix2pix widens channels up to 8x features and then keeps them flat.
MAX_WIDTH_MULT = 8
# Dropout is applied in this many of the deepest decoder blocks, as in pix2pix.
DROPOUT_LEVELS = 3
DROPOUT_P = 0.5


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not supported; expected one of {', '.join(allowed)}")


class UnetGenerator(nn.Module):
    """Maps an input image to an output image of the same size; output in [-1, 1].

    Each of ``n_downs`` levels halves H and W, so inputs must be multiples of ``2**n_downs``
    (256 for the classic n_downs=8). The innermost level has no norm because its feature map
    can be 1x1, where batch/instance statistics are undefined.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        features: int = 64,
        n_downs: int = 8,
        block_type: str = "plain",
        upsample: str = "transpose",
        use_dropout: bool = True,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_positive_ints(
            in_channels=in_channels, out_channels=out_channels, features=features, n_downs=n_downs
        )
        _check_choice("block_type", block_type, BLOCK_TYPES)
        _check_choice("upsample", upsample, UPSAMPLE_MODES)
        check_norm(norm)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.features, self.n_downs = features, n_downs
        self.block_type, self.upsample, self.norm = block_type, upsample, norm
        self.use_dropout = use_dropout
        self.downs = self._build_encoder()
        self.ups = self._build_decoder()
        init_weights(self)

    def _width(self, level: int) -> int:
        return self.features * min(2**level, MAX_WIDTH_MULT)

    def _level_norm(self, level: int) -> str | None:
        # No norm on the first encoder conv (pix2pix) nor at the possibly-1x1 bottleneck.
        return None if level in (0, self.n_downs - 1) else self.norm

    def _build_encoder(self) -> nn.ModuleList:
        residual = self.block_type == "residual"
        blocks = []
        for level in range(self.n_downs):
            in_ch = self.in_channels if level == 0 else self._width(level - 1)
            norm = self._level_norm(level)
            blocks.append(down_block(in_ch, self._width(level), norm, residual))
        return nn.ModuleList(blocks)

    def _build_decoder(self) -> nn.ModuleList:
        """ups[0] is the innermost block; ups[-1] produces the output image."""
        residual = self.block_type == "residual"
        deepest = self.n_downs - 1
        blocks: list[nn.Module] = []
        for level in range(deepest, 0, -1):
            in_ch = self._width(level) * (1 if level == deepest else 2)
            dropout = DROPOUT_P if self.use_dropout and deepest - level < DROPOUT_LEVELS else 0.0
            blocks.append(
                up_block(in_ch, self._width(level - 1), self.norm, residual, self.upsample, dropout)
            )
        last_in = self._width(0) * (1 if deepest == 0 else 2)
        blocks.append(output_block(last_in, self.out_channels, self.upsample))
        return nn.ModuleList(blocks)

    @property
    def size_multiple(self) -> int:
        """Input H and W must be multiples of this."""
        return 2**self.n_downs

    def check_input_size(self, height: int, width: int) -> None:
        """Raise a clear ValueError if (height, width) cannot pass through every level."""
        m = self.size_multiple
        for name, value in (("height", height), ("width", width)):
            if value < m or value % m:
                raise ValueError(
                    f"input {name} {value} must be a positive multiple of 2**n_downs={m} "
                    f"(n_downs={self.n_downs}); use a crop size such as {max(m, value // m * m)} "
                    f"or lower n_downs"
                )

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"expected a 4-D (N, C, H, W) input, got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"input has {x.shape[1]} channels but the generator expects "
                f"in_channels={self.in_channels}"
            )
        self.check_input_size(x.shape[2], x.shape[3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        skips.pop()  # the bottleneck feeds ups[0] directly, not through a skip
        for up in self.ups[:-1]:
            h = torch.cat([up(h), skips.pop()], dim=1)
        return self.ups[-1](h)
