"""Run a trained generator over a split: output triplets and a JSON of L1/PSNR/SSIM.

Evaluation is deterministic: no augmentation (resize to ``load_size`` and a
centre crop), the generator in eval mode, images in file order, fp32 math
unless a precision is asked for (the live validation during training uses
the run's own, e.g. bf16; ``nectargan test --precision bf16`` reproduces it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from nectargan import experiment_layout as layout
from nectargan.config import Config
from nectargan.dataset import PairedDataset
from nectargan.dataset.io import has_images
from nectargan.errors import CheckpointUserError, MissingDataError
from nectargan.metrics import MetricAverager, all_metrics
from nectargan.models import UnetGenerator
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.builders import build_generator
from nectargan.trainers.data import make_dataset
from nectargan.trainers.precision import eval_mode, resolve_device, resolve_precision
from nectargan.trainers.resume.choose import find_checkpoint
from nectargan.trainers.triplet_files import save_triplet
from nectargan.utils.outputs import output_dir

METRICS_FILE = layout.METRICS_FILE
TEST_DIR = layout.TEST_DIR
EVAL_BATCH_SIZE = 16


def load_generator(
    experiment_dir: str | Path, epoch: int | str = -1, device: str | torch.device = "cpu"
) -> tuple[UnetGenerator, Config, dict[str, Any], Path]:
    """The generator of a checkpoint, built from the config stored inside it.

    (generator, its config, the checkpoint's state, its path); ``test``, ``infer`` and
    ``export`` all load theirs here.
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
    return generator.to(device), config, state, path


def eval_dataset(
    config: Config, split: str = "test", dataroot: str | Path | None = None
) -> PairedDataset:
    """``split`` of the run's dataset (or of ``dataroot``), without augmentation."""
    root = Path(dataroot or config.dataloader.dataroot or "")
    if not root.is_dir():
        raise MissingDataError(
            f"dataset {str(root)!r} not found; pass --dataroot DIR (a folder with {split}/)"
        )
    other = evaluable_split(root, split)
    if other != split:
        raise MissingDataError(
            f"no image files in '{root / split}'; this dataset has a {other} split: "
            f"pass --split {other}"
        )
    return make_dataset(config.dataloader, root, split, train=False)


def evaluable_split(root: str | Path, split: str = "test") -> str:
    """``split``, or ``val`` when ``split`` is an empty test/ and val/ has images.

    Never ``train``: scores on the training images would look better than the model is.
    """
    root = Path(root)
    if split == "test" and not has_images(root / "test") and has_images(root / "val"):
        return "val"
    return split


def spread_indices(n_items: int, max_items: int | None) -> list[int]:
    """At most ``max_items`` fixed items, evenly spread over the split (all of it if it fits).

    The live validation and ``nectargan test --max-images`` pick the same ones.
    """
    if max_items is None or max_items >= n_items:
        return list(range(n_items))
    if max_items <= 0:
        return []
    if max_items == 1:
        return [0]
    return sorted({round(i * (n_items - 1) / (max_items - 1)) for i in range(max_items)})


@torch.no_grad()
def evaluate_generator(
    generator: torch.nn.Module,
    dataset: PairedDataset,
    device: str | torch.device = "cpu",
    out_dir: Path | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    *,
    indices: Sequence[int] | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
) -> dict[str, Any]:
    """Mean metrics over ``dataset`` (or its items ``indices``) and per-image rows.

    Triplets go to ``out_dir`` if given. ``autocast``: the forward pass's
    context (e.g. ``Precision.autocast()``); None is fp32.
    """
    chosen = list(range(len(dataset))) if indices is None else list(indices)
    loader = DataLoader(Subset(dataset, chosen), batch_size=batch_size, shuffle=False)
    averager = MetricAverager()
    rows: list[dict[str, Any]] = []
    names = iter(dataset.paths[i].stem for i in chosen)
    with eval_mode(generator):
        for x, y in loader:
            with autocast if autocast is not None else contextlib.nullcontext():
                y_fake = generator(x.to(device))
            y_fake = y_fake.float().cpu()
            per_image = all_metrics(y_fake, y)
            averager.add(per_image)
            for k in range(len(x)):
                name = next(names)
                rows.append({"image": name, **{m: float(v[k]) for m, v in per_image.items()}})
                if out_dir is not None:
                    save_triplet(out_dir / f"{name}.png", x[k], y_fake[k], y[k])
    return {"n_images": averager.count, "metrics": averager.means(), "per_image": rows}


def evaluate_experiment(
    experiment_dir: str | Path,
    epoch: int | str = -1,
    split: str = "test",
    dataroot: str | Path | None = None,
    out_dir: str | Path | None = None,
    device: str = "auto",
    save_images: bool = True,
    precision: str = "off",
    max_images: int | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a split; write triplets and ``metrics.json`` to ``out_dir``.

    ``epoch``: completed epochs, -1 (latest) or ``'best'`` (``best.pt``).
    ``out_dir`` defaults to ``<experiment>/test/epoch_NNNN`` (``best_epoch_NNNN``
    for ``'best'``). ``precision``: ``train.mixed_precision``'s modes (``'off'``:
    fp32). ``max_images``: at most that many evenly spread items, the ones
    the live validation uses. Returns the report that was written.
    """
    if out_dir:
        output_dir(out_dir, "--out")  # before the model loads, not after the work
    dev = resolve_device(device)
    autocast = resolve_precision(precision, dev)
    generator, config, state, path = load_generator(experiment_dir, epoch, dev)
    dataset = eval_dataset(config, split, dataroot)
    trained = int(state["epoch"])
    suffix = "_interrupted" if state.get("interrupted") else ""
    if epoch == "best":
        suffix = ""
    prefix = "best_" if epoch == "best" else ""
    out = (
        Path(out_dir)
        if out_dir
        else Path(experiment_dir)
        / TEST_DIR
        / (prefix + layout.evaluation_dir_name(trained, suffix))
    )
    output_dir(out, "--out")
    result = evaluate_generator(
        generator,
        dataset,
        dev,
        out if save_images else None,
        indices=spread_indices(len(dataset), max_images),
        autocast=autocast.autocast(),
    )
    report = {
        "experiment": str(Path(experiment_dir)),
        "checkpoint": str(path),
        "epoch": trained,
        "interrupted": bool(state.get("interrupted")),
        "split": split,
        "precision": autocast.name,
        "dataroot": str(dataset.root),
        "value_range": "metrics on images mapped from [-1, 1] to [0, 1]",
        **result,
    }
    (out / METRICS_FILE).write_text(json.dumps(report, indent=2) + "\n")
    report["out_dir"] = str(out)
    return report


def untrained_baseline(
    config: Config, dataset: PairedDataset, device: str | torch.device = "cpu"
) -> dict[str, float]:
    """Metrics of a freshly initialised generator: the floor a trained one must beat."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's RNG stream alone
        torch.manual_seed(config.common.seed)
        generator = build_generator(config).to(device)
    return evaluate_generator(generator, dataset, device)["metrics"]
