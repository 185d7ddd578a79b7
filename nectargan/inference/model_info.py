"""What a caller must know about a generator to feed it: channels, size multiple, scale.

One small record shared by the torch and ONNX paths. It is built from a run's config
(checkpoints) or from the ``metadata_props`` written into an exported model, so the
two paths make the same sizing and channel choices.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

# Inputs and outputs are float32 in [-1, 1]: uint8 pixel / 127.5 - 1 (nectargan.dataset.io).
NORMALIZATION = "x/127.5-1"


@dataclass(frozen=True)
class ModelInfo:
    """Shape contract of a generator: ``channels`` in and out, H and W multiples of ``size_multiple``."""

    channels: int
    n_downs: int
    crop_size: int
    direction: str = "AtoB"
    normalization: str = NORMALIZATION
    epoch: int | None = None
    config_digest: str | None = None
    # Set when a model only accepts one spatial size (an export made with --static H W).
    static_hw: tuple[int, int] | None = None
    # Architecture, for the memory estimate behind automatic tiling (None: not known).
    features: int | None = None
    block_type: str = "plain"
    upsample: str = "transpose"

    @property
    def size_multiple(self) -> int:
        return 2**self.n_downs

    @classmethod
    def from_config(cls, config: Any, epoch: int | None = None) -> ModelInfo:
        """From a run's config (a ``Config``: attribute access to its sections)."""
        return cls(
            channels=int(config.dataloader.channels),
            n_downs=int(config.train.generator.n_downs),
            crop_size=int(config.dataloader.crop_size),
            direction=str(config.dataloader.direction),
            epoch=epoch,
            config_digest=config_digest(config),
            features=int(config.train.generator.features),
            block_type=str(config.train.generator.block_type),
            upsample=str(config.train.generator.upsample),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def config_digest(config: Any) -> str:
    """SHA-256 of the config as canonical JSON: which run (and settings) a model came from."""
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()
