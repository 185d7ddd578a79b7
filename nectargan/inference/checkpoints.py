"""The generator of the checkpoint ``--epoch`` names, ready for inference.

Which file ``--epoch`` names is decided in the resume package alone
(:mod:`nectargan.trainers.resume.choose`), for training, ``test``, ``infer`` and ``export``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nectargan.inference.model_info import ModelInfo
from nectargan.trainers.evaluate import load_generator
from nectargan.trainers.resume.choose import BEST, LATEST, find_checkpoint, parse_epoch

resolve_checkpoint = find_checkpoint  # the name this module gave it before it moved
__all__ = ["BEST", "LATEST", "load_inference_generator", "parse_epoch", "resolve_checkpoint"]


def load_inference_generator(
    experiment_dir: str | Path,
    epoch: str | int = LATEST,
    device: str | torch.device = "cpu",
) -> tuple[torch.nn.Module, Any, ModelInfo, Path]:
    """(generator in eval mode, its config, its :class:`ModelInfo`, checkpoint path).

    Eval mode, as ``nectargan test`` uses: dropout off and batch norm on the running
    statistics gathered in training, so an image's output does not depend on which
    other images share its batch, and runs repeat exactly (see docs/inference.md).
    """
    generator, config, state, path = load_generator(experiment_dir, epoch, device)
    generator.eval()
    info = ModelInfo.from_config(config, epoch=int(state.get("epoch", 0)))
    return generator, config, info, path
