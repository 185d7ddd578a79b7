"""Paired image data: loading, augmentation, synthetic generation and folder tools."""

from nectargan.dataset.augment import AugmentConfig, PairedTransform
from nectargan.dataset.io import ImageReadError
from nectargan.dataset.paired_dataset import PairedDataset
from nectargan.dataset.synth import generate_synthetic_dataset
from nectargan.dataset.tools import pair_folders, split_dataset

__all__ = [
    "AugmentConfig",
    "ImageReadError",
    "PairedDataset",
    "PairedTransform",
    "generate_synthetic_dataset",
    "pair_folders",
    "split_dataset",
]
