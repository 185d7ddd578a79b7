"""Networks and optimizers from a config, shared by training and evaluation."""

from __future__ import annotations

import torch

from nectargan.config import Config
from nectargan.models import PatchGANDiscriminator, UnetGenerator


def build_generator(config: Config) -> UnetGenerator:
    g = config.train.generator
    channels = config.dataloader.channels
    return UnetGenerator(
        in_channels=channels,
        out_channels=channels,
        features=g.features,
        n_downs=g.n_downs,
        block_type=g.block_type,
        upsample=g.upsample,
        use_dropout=g.use_dropout,
        norm=g.norm,
    )


def build_discriminator(config: Config) -> PatchGANDiscriminator:
    d = config.train.discriminator
    channels = config.dataloader.channels
    return PatchGANDiscriminator(
        in_channels=channels,
        out_channels=channels,
        base_channels=d.base_channels,
        max_channels=d.max_channels,
        n_layers=d.n_layers,
        norm=d.norm,
    )


def build_adam(module: torch.nn.Module, config: Config) -> torch.optim.Adam:
    """Adam with pix2pix's betas; ``foreach`` keeps the update to a few fused kernels."""
    return torch.optim.Adam(
        module.parameters(),
        lr=config.train.lr_initial,
        betas=(config.train.beta1, 0.999),
        foreach=True,
    )


def memory_format(config: Config) -> torch.memory_format:
    return torch.channels_last if config.train.channels_last else torch.contiguous_format
