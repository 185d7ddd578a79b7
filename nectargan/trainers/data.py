"""DataLoaders from the config: dataset location, augmentation, workers sized to the machine."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler, Sampler

from nectargan.dataset import AugmentConfig, PairedDataset, generate_synthetic_dataset
from nectargan.errors import MissingDataError
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


def dataroot_for(
    config: Any, run_once: Callable[[Callable[[], Path]], Path] = lambda make: make()
) -> Path:
    """``dataloader.dataroot``, or the built-in synthetic dataset (made once) when unset.

    ``run_once(make)`` makes that dataset: the trainer passes its process group's
    ``main_first``, so in a distributed job rank 0 writes it while the others wait.
    """
    dl = config.dataloader
    if dl.dataroot is None:
        return run_once(
            partial(ensure_synthetic_dataset, config.common.output_directory, dl.synthetic)
        )
    root = Path(dl.dataroot).expanduser()
    if not root.is_dir():
        raise MissingDataError(
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


class ResumableSampler(Sampler[int]):
    """Another sampler's order, able to start one epoch part-way through.

    Why: a run resumed from a mid-epoch checkpoint must train the rest of that
    epoch in the same order, without loading the items it already trained on.
    Skipping indices here costs nothing; skipping batches of a DataLoader
    would decode and augment them all.
    """

    def __init__(self, inner: Sampler[int]) -> None:
        self.inner = inner
        self._skip = 0

    def skip_next(self, items: int) -> None:
        """The next epoch's iteration starts after its first ``items`` indices."""
        if items < 0:
            raise ValueError(f"items: expected >= 0, got {items}")
        self._skip = items

    def set_epoch(self, epoch: int) -> None:
        """Passed on to a sampler that shuffles by epoch (``DistributedSampler``)."""
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner)  # the whole epoch: batch indices and epoch fractions use it

    def __iter__(self) -> Iterator[int]:
        skip, self._skip = self._skip, 0
        return itertools.islice(iter(self.inner), skip, None)


def resumable_sampler(loader: Any) -> ResumableSampler | None:
    """The training loader's :class:`ResumableSampler`, if it has one."""
    sampler = getattr(loader, "sampler", None)
    return sampler if isinstance(sampler, ResumableSampler) else None


def order_state(loader: Any) -> torch.Tensor | None:
    """The state of the generator the next epoch's shuffle is drawn from (None: none)."""
    generator = getattr(loader, "generator", None)
    return generator.get_state() if isinstance(generator, torch.Generator) else None


def restore_order(loader: Any, state: torch.Tensor | None) -> None:
    """Draw the next epoch's shuffle as the saved run would have (see :func:`order_state`)."""
    generator = getattr(loader, "generator", None)
    if state is not None and isinstance(generator, torch.Generator):
        generator.set_state(state.cpu())


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
        generator = torch.Generator().manual_seed(seed)
        # the same order as shuffle=True, drawn from the same generator, but resumable
        sampler = ResumableSampler(RandomSampler(dataset, generator=generator)) if train else None
        return DataLoader(
            dataset,
            batch_size=dl["batch_size"],
            sampler=sampler,
            # A short last batch would give BatchNorm a different batch size (and
            # torch.compile a new shape); keep it only if it is the whole dataset.
            drop_last=train and len(dataset) >= dl["batch_size"],
            num_workers=workers,
            pin_memory=pin,
            persistent_workers=workers > 0,
            generator=generator,
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
