"""Which checkpoint ``--epoch`` names, and the generator inside it ready for inference.

``--epoch`` is resolved in :func:`resolve_checkpoint` alone, so a new name (``best``)
is one branch here and every command that takes ``--epoch`` gets it.
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
from nectargan.utils.numbers import is_int

LATEST, BEST = "latest", "best"


def parse_epoch(text: str | int) -> int | str:
    """``'latest'`` / ``-1`` -> ``'latest'``; ``'best'``; ``'7'`` -> 7; anything else is refused."""
    if is_int(text):
        value = text
    else:
        word = str(text).strip().lower()
        if word in (LATEST, BEST):
            return word
        try:
            value = int(word)
        except ValueError:
            raise CheckpointUserError(
                f"--epoch: expected a number of completed epochs, 'latest' or 'best', got {text!r}"
            ) from None
    if value == -1:
        return LATEST
    if value < 0:
        raise CheckpointUserError(
            f"--epoch: expected a number of completed epochs >= 0, 'latest' or 'best', got {value}"
        )
    return value


def resolve_checkpoint(experiment_dir: str | Path, epoch: str | int = LATEST) -> Path:
    """The checkpoint file ``epoch`` names in ``experiment_dir`` (a number, 'latest', 'best')."""
    spec = parse_epoch(epoch)
    if spec == BEST:  # checkpoints/best.pt, written by live validation
        return ckpt.find_checkpoint(experiment_dir, BEST)
    return ckpt.find_checkpoint(experiment_dir, -1 if spec == LATEST else int(spec))


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
    path = resolve_checkpoint(experiment_dir, epoch)
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
