"""The generator of the checkpoint ``--epoch`` names, ready for inference.

Which file ``--epoch`` names is decided in the resume package alone
(:mod:`nectargan.trainers.resume.choose`), for training, ``test``, ``infer`` and ``export``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nectargan.config import Config
from nectargan.errors import CheckpointUserError
from nectargan.inference.model_info import ModelInfo
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.builders import build_generator
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
    path = find_checkpoint(experiment_dir, epoch)
    state = ckpt.load_checkpoint(path, map_location=device)
    config = Config.load(state["config"])
    generator = build_generator(config)
    try:
        generator.load_state_dict(state["networks"]["G"]["model"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointUserError(
            f"checkpoint {str(path)!r} holds no generator weights matching its own config: {exc}"
        ) from exc
    generator.to(device).eval()
    info = ModelInfo.from_config(config, epoch=int(state.get("epoch", 0)))
    return generator, config, info, path
