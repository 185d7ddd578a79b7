"""Live validation during training: L1, PSNR and SSIM of the generator on fixed held-out items.

What is measured is exactly what ``nectargan test --split SPLIT --precision P
--max-images N`` measures for the same checkpoint: the same dataset (no
augmentation), the same evenly spread items, the same batching and metric
code (:func:`~nectargan.trainers.evaluate.evaluate_generator`), the generator
in eval mode on the training device, under the training precision (bf16
where training runs bf16).

Validation must not change training: it runs inside ``torch.random.fork_rng``
(the DataLoader draws a seed from the global generator even unshuffled), in
eval mode (BatchNorm's running statistics and dropout untouched) and under
``no_grad``; a test checks the weights after an epoch are identical with and
without it.

The split is ``val/`` of the dataset, or ``test/`` when there is no ``val/``
(the built-in synthetic dataset has both).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from nectargan.dataset import PairedDataset
from nectargan.dataset.io import has_images
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.data import make_dataset
from nectargan.trainers.evaluate import evaluate_generator, spread_indices
from nectargan.trainers.precision import Precision

SPLITS = ("val", "test")  # in order of preference


@dataclass(frozen=True)
class ValResult:
    """One validation: mean metrics over ``images`` items, and how long it took."""

    epoch: int
    l1: float
    psnr: float
    ssim: float
    images: int
    seconds: float
    precision: str

    def row(self) -> dict[str, Any]:
        """Its ``val_metrics.json`` row: every field, the seconds rounded."""
        return asdict(self) | {"seconds": round(self.seconds, 4)}


def validation_split(root: Path) -> str | None:
    """``val`` when the dataset has images there, else ``test``, else None (no validation).

    An empty folder counts as absent: ``data synth`` or ``data split`` of a few images
    leaves val/ and test/ empty, and such a dataset must still train.
    """
    for split in SPLITS:
        if has_images(Path(root) / split):
            return split
    return None


class Validator:
    """Measures a generator on the first validation split's fixed items."""

    def __init__(
        self,
        dataset: PairedDataset,
        split: str,
        max_images: int,
        device: torch.device,
        precision: Precision,
    ) -> None:
        self.dataset = dataset
        self.split = split
        self.indices = spread_indices(len(dataset), max_images)
        self.device = device
        self.precision = precision

    @classmethod
    def for_dataroot(
        cls,
        dataloader_cfg: Any,
        root: Path,
        max_images: int,
        device: torch.device,
        precision: Precision,
    ) -> Validator | None:
        split = validation_split(root)
        if split is None:
            return None
        dataset = make_dataset(dataloader_cfg, root, split, train=False)
        if len(dataset) == 0:
            return None
        return cls(dataset, split, max_images, device, precision)

    @property
    def n_images(self) -> int:
        return len(self.indices)

    def run(self, generator: torch.nn.Module, epoch: int) -> ValResult:
        """Validate ``generator`` (the plain module, not a DDP/compiled wrapper) after ``epoch``."""
        started = time.perf_counter()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            result = evaluate_generator(
                generator,
                self.dataset,
                self.device,
                indices=self.indices,
                autocast=self.precision.autocast(),
            )
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        m = result["metrics"]
        return ValResult(
            epoch=epoch,
            l1=float(m["l1"]),
            psnr=float(m["psnr"]),
            ssim=float(m["ssim"]),
            images=int(result["n_images"]),
            seconds=time.perf_counter() - started,
            precision=self.precision.name,
        )


# -- the best checkpoint ------------------------------------------------------------------------


def best_path(experiment_dir: Path) -> Path:
    return ckpt.checkpoint_dir(experiment_dir) / ckpt.BEST


def write_best(experiment_dir: Path, epoch: int, state: Any = None) -> Path:
    """Make ``checkpoints/best.pt`` the checkpoint of ``epoch``.

    A hard link to ``epoch_NNNN.pt`` when that was saved (no copy, no disk;
    a copy where links are refused), else ``state()`` written out. Either way
    through a temporary name and one rename, so ``best.pt`` is always whole.
    ``latest.json`` is not touched: a resume continues the latest, not the best.
    """
    target = best_path(experiment_dir)
    source = ckpt.epoch_path(experiment_dir, epoch)
    if source.is_file():
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            try:
                os.link(source, tmp)
            except OSError:
                shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target
    if state is None:
        raise FileNotFoundError(f"no checkpoint of epoch {epoch} to make best.pt from: {source}")
    return ckpt.save_checkpoint(target, state(), latest=False)


def drop_best(experiment_dir: Path) -> None:
    best_path(experiment_dir).unlink(missing_ok=True)
