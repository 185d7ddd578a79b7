"""Paired image data: loading, augmentation, synthetic generation and folder tools.

The names below are loaded on first use, so a torch-free submodule (``download``,
``layout``, ``archive``) can be imported without torch: ``nectargan --help`` and
``nectargan visdom status`` then start in a fraction of a second, not two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nectargan.utils.lazy import lazy_names

_WHERE = {
    "AugmentConfig": "augment",
    "PairedTransform": "augment",
    "ImageReadError": "io",
    "PairedDataset": "paired_dataset",
    "generate_synthetic_dataset": "synth",
    "pair_folders": "tools",
    "split_dataset": "tools",
}
__all__ = [
    "AugmentConfig",
    "ImageReadError",
    "PairedDataset",
    "PairedTransform",
    "generate_synthetic_dataset",
    "pair_folders",
    "split_dataset",
]

if TYPE_CHECKING:
    from nectargan.dataset.augment import AugmentConfig, PairedTransform
    from nectargan.dataset.io import ImageReadError
    from nectargan.dataset.paired_dataset import PairedDataset
    from nectargan.dataset.synth import generate_synthetic_dataset
    from nectargan.dataset.tools import pair_folders, split_dataset

__getattr__ = lazy_names(__name__, _WHERE)
