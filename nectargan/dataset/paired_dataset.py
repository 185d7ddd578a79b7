"""Pix2pix-layout paired dataset: ``root/{train,val,test}/*`` images holding A|B side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from nectargan.dataset.augment import AugmentConfig, PairedTransform
from nectargan.dataset.io import SPLITS, ImageReadError, check_channels, list_images, load_image
from nectargan.errors import ConfigUserError, MissingDataError

DIRECTIONS = ("AtoB", "BtoA")


def split_pair(img: Image.Image, path: Path) -> tuple[Image.Image, Image.Image]:
    """Cut a side-by-side image into its left (A) and right (B) halves."""
    w, h = img.size
    if w < 2:
        raise ImageReadError(f"image '{path}' is {w}px wide, too narrow to hold an A|B pair")
    half = w // 2
    return img.crop((0, 0, half, h)), img.crop((half, 0, 2 * half, h))


class PairedDataset(Dataset):
    """Yields ``(x, y)`` float32 tensors, (C, H, W) in [-1, 1]; x is the generator input.

    Only files with image extensions are read. A corrupt or unreadable file raises
    ``ImageReadError`` (an OSError) naming the file when that item is loaded; nothing is
    skipped silently, because a silently shrinking dataset hides data problems.
    Augmentation runs only when ``is_train`` (default: ``split == 'train'``); ``augment=None``
    means pix2pix's defaults (random crop + horizontal flip), ``AugmentConfig.off()`` none.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        direction: str = "AtoB",
        load_size: int = 286,
        crop_size: int = 256,
        channels: int = 3,
        augment: AugmentConfig | dict[str, Any] | None = None,
        is_train: bool | None = None,
    ) -> None:
        if direction not in DIRECTIONS:
            raise ConfigUserError(f"direction {direction!r} must be one of {', '.join(DIRECTIONS)}")
        check_channels(channels)
        self.root, self.split = Path(root), split
        self.direction, self.channels = direction, channels
        self.is_train = split == "train" if is_train is None else is_train
        self.augment = AugmentConfig.from_any(augment)
        self.transform = PairedTransform(load_size, crop_size, self.augment, self.is_train)
        self.paths = self._find_images()

    def _find_images(self) -> list[Path]:
        folder = self.root / self.split
        if not folder.is_dir():
            raise MissingDataError(
                f"split folder '{folder}' not found; expected {self.root}/<split>/ with split "
                f"in {', '.join(SPLITS)} holding side-by-side A|B images"
            )
        paths = list_images(folder)
        if not paths:
            raise MissingDataError(f"no image files in '{folder}'")
        return paths

    def __len__(self) -> int:
        return len(self.paths)

    def load_pair(self, index: int) -> tuple[Image.Image, Image.Image]:
        """The (input, target) PIL images for ``index`` before any transform."""
        path = self.paths[index]
        a, b = split_pair(load_image(path, self.channels), path)
        return (a, b) if self.direction == "AtoB" else (b, a)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.load_pair(index)
        return self.transform(x, y)

    def __repr__(self) -> str:
        return (
            f"PairedDataset(root='{self.root}', split={self.split!r}, n={len(self)}, "
            f"direction={self.direction!r}, crop_size={self.transform.crop_size}, "
            f"train={self.is_train})"
        )
