"""DataLoaders from the config: dataset location, augmentation, workers sized to the machine."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from nectargan.dataset import AugmentConfig, PairedDataset, generate_synthetic_dataset
from nectargan.errors import DataUserError
from nectargan.trainers.loader_sizing import AutoSizedLoader, probe_item_seconds

SYNTHETIC_DIR = "datasets"


def synthetic_dataroot(output_directory: str | Path, synthetic: Mapping[str, Any]) -> Path:
    """Where the built-in dataset with these settings lives (shared by every run)."""
    name = f"synthetic_n{synthetic['n']}_{synthetic['size']}px_seed{synthetic['seed']}"
    return Path(output_directory) / SYNTHETIC_DIR / name


def ensure_synthetic_dataset(output_directory: str | Path, synthetic: Mapping[str, Any]) -> Path:
    """Generate the synthetic dataset once; later runs find it finished and reuse it."""
    root = synthetic_dataroot(output_directory, synthetic)
    return generate_synthetic_dataset(
        root, n=synthetic["n"], size=synthetic["size"], seed=synthetic["seed"]
    )


def dataroot_for(config: Any) -> Path:
    """``dataloader.dataroot``, or the built-in synthetic dataset (made once) when unset."""
    dl = config.dataloader
    if dl.dataroot is None:
        return ensure_synthetic_dataset(config.common.output_directory, dl.synthetic)
    root = Path(dl.dataroot).expanduser()
    if not root.is_dir():
        raise DataUserError(
            f"dataloader.dataroot: {str(root)!r} is not a directory; expected a folder "
            "with train/ (and val/, test/) subfolders of side-by-side A|B images"
        )
    return root


def augment_from_config(aug: Mapping[str, Any]) -> AugmentConfig:
    """The config's ``dataloader.augment`` section as the dataset's options."""
    return AugmentConfig.from_any(dict(aug.to_dict() if hasattr(aug, "to_dict") else aug))


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def auto_num_workers(device: torch.device) -> int:
    """Loader processes for ``num_workers=-1``.

    On CPU the training step needs every core, and decoding small PNGs costs
    far less than a step, so workers only pay off once cores are plentiful;
    with a GPU doing the math, more cores can go to decoding.
    """
    cores = usable_cores()
    if device.type == "cuda":
        return max(0, min(8, cores - 1))
    return 0 if cores <= 2 else min(4, cores // 4)


def make_dataset(dl: Mapping[str, Any], root: Path, split: str, train: bool) -> PairedDataset:
    """A split of the paired dataset; evaluation splits get no augmentation at all."""
    return PairedDataset(
        root,
        split=split,
        direction=dl["direction"],
        load_size=dl["load_size"],
        crop_size=dl["crop_size"],
        channels=dl["channels"],
        augment=augment_from_config(dl["augment"]) if train else AugmentConfig.off(),
        is_train=train,
    )


def make_loader(
    dataset: PairedDataset,
    dl: Mapping[str, Any],
    device: torch.device,
    train: bool,
    seed: int = 0,
) -> DataLoader | AutoSizedLoader:
    """Shuffled, full batches for training; ordered batches for evaluation.

    ``num_workers=-1`` on a training loader: an :class:`AutoSizedLoader`, whose worker
    count follows the measured step rate from the second epoch on.
    """
    pin = dl["pin_memory"]
    pin = device.type == "cuda" if pin == "auto" else bool(pin) and device.type == "cuda"

    def build(workers: int) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=dl["batch_size"],
            shuffle=train,
            # A short last batch would give BatchNorm a different batch size (and
            # torch.compile a new shape); keep it only if it is the whole dataset.
            drop_last=train and len(dataset) >= dl["batch_size"],
            num_workers=workers,
            pin_memory=pin,
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(seed),
        )

    if dl["num_workers"] >= 0:
        return build(dl["num_workers"])
    if not train:
        return build(auto_num_workers(device))
    return AutoSizedLoader(
        build,
        initial_workers=auto_num_workers(device),
        item_seconds=probe_item_seconds(dataset),
        batch_size=dl["batch_size"],
        cores=usable_cores(),
        cuda=device.type == "cuda",
    )
