"""Networks and optimizers from a config, shared by training and evaluation."""

from __future__ import annotations

import torch

from nectargan.config import Config
from nectargan.config.schema import Network
from nectargan.models import PatchGANDiscriminator, UnetGenerator


def build_generator(config: Config) -> UnetGenerator:
    """The U-Net ``train.generator`` describes: each key there is one of its arguments."""
    return UnetGenerator(**_channels(config), **config.train.generator.model_dump())


def build_discriminator(config: Config) -> PatchGANDiscriminator:
    """The PatchGAN ``train.discriminator`` describes: each key there is one of its arguments."""
    return PatchGANDiscriminator(**_channels(config), **config.train.discriminator.model_dump())


def _channels(config: Config) -> dict[str, int]:
    """Image channels in and out (``dataloader.channels``): a pix2pix pair has the same on both."""
    channels = config.dataloader.channels
    return {"in_channels": channels, "out_channels": channels}


def build_adam(
    module: torch.nn.Module, config: Config, network: Network = "generator"
) -> torch.optim.Adam:
    """Adam with pix2pix's betas, as one fused kernel where this torch has it.

    ``network`` picks the learning rate and beta1 of ``train.optimizers.<network>``,
    which default to the shared ``train.lr_initial`` / ``train.beta1``.

    The for-loop Adam that torch picks by default on CPU makes ~10 passes over
    every weight per step; for pix2pix's 54M-parameter U-Net at batch 1 that is
    a large share of the step. Fused Adam is the same update in one pass.
    """
    params = list(module.parameters())
    settings = config.train.optimizer_for(network)
    kwargs = {"lr": settings.lr_initial, "betas": (settings.beta1, 0.999)}
    if fused_adam_supported(params):
        return torch.optim.Adam(params, fused=True, **kwargs)
    return torch.optim.Adam(params, foreach=True, **kwargs)


def fused_adam_supported(params: list[torch.Tensor]) -> bool:
    """Fused Adam needs floating-point params on CPU (torch >= 2.4) or CUDA."""
    try:
        torch.optim.Adam([torch.zeros(1, device=p.device) for p in params[:1]], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return all(p.is_floating_point() for p in params)


IMPLEMENTATION_KEYS = ("fused", "foreach")


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load ``state`` but keep this optimizer's implementation (fused/foreach).

    ``Optimizer.load_state_dict`` copies every group option from the saved
    state, so a checkpoint written by the for-loop or foreach Adam would
    silently turn the fused one back into the slow path.
    """
    current = [{k: g.get(k) for k in IMPLEMENTATION_KEYS} for g in optimizer.param_groups]
    groups = [
        {**saved, **current[i]} if i < len(current) else saved
        for i, saved in enumerate(state["param_groups"])
    ]
    optimizer.load_state_dict({**state, "param_groups": groups})


def memory_format(config: Config, device: torch.device) -> torch.memory_format:
    """``train.channels_last``: ``'auto'`` means on CUDA only.

    On CUDA channels_last feeds the tensor cores. On CPU (oneDNN, bf16) it
    measured no faster at batch 4 and ~5% slower at batch 1 for pix2pix: the
    big 4x4 weights are cast to bf16 and back every step, and in channels_last
    their gradients need an extra layout copy (see docs/benchmarks.md).
    """
    wanted = config.train.channels_last
    if wanted == "auto":
        wanted = device.type == "cuda"
    return torch.channels_last if wanted else torch.contiguous_format
