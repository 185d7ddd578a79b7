"""Run a trained generator over a split: output triplets and a JSON of L1/PSNR/SSIM.

Evaluation is deterministic: no augmentation (resize to ``load_size`` and a
centre crop), the generator in eval mode, fp32 math, images in file order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from nectargan import experiment_layout as layout
from nectargan.config import Config
from nectargan.dataset import PairedDataset
from nectargan.errors import MissingDataError
from nectargan.metrics import MetricAverager, all_metrics
from nectargan.models import UnetGenerator
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.builders import build_generator
from nectargan.trainers.data import make_dataset
from nectargan.trainers.images import save_triplet
from nectargan.trainers.precision import eval_mode, resolve_device

METRICS_FILE = layout.METRICS_FILE
TEST_DIR = layout.TEST_DIR
EVAL_BATCH_SIZE = 16


def load_generator(
    experiment_dir: str | Path, epoch: int = -1, device: str | torch.device = "cpu"
) -> tuple[UnetGenerator, Config, dict[str, Any], Path]:
    """The generator of a checkpoint, built from the config stored inside it."""
    path = ckpt.find_checkpoint(experiment_dir, epoch)
    state = ckpt.load_checkpoint(path, map_location=device)
    config = Config.load(state["config"])
    generator = build_generator(config).to(device)
    generator.load_state_dict(state["networks"]["G"]["model"])
    return generator, config, state, path


def eval_dataset(
    config: Config, split: str = "test", dataroot: str | Path | None = None
) -> PairedDataset:
    """``split`` of the run's dataset (or of ``dataroot``), without augmentation."""
    root = Path(dataroot or config.dataloader.dataroot or "")
    if not root.is_dir():
        raise MissingDataError(
            f"dataset {str(root)!r} not found; pass --dataroot DIR (a folder with {split}/)"
        )
    return make_dataset(config.dataloader, root, split, train=False)


@torch.no_grad()
def evaluate_generator(
    generator: torch.nn.Module,
    dataset: PairedDataset,
    device: str | torch.device = "cpu",
    out_dir: Path | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
) -> dict[str, Any]:
    """Mean metrics over ``dataset`` and per-image rows; triplets go to ``out_dir`` if given."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    averager = MetricAverager()
    rows: list[dict[str, Any]] = []
    names = iter(p.stem for p in dataset.paths)
    with eval_mode(generator):
        for x, y in loader:
            y_fake = generator(x.to(device)).float().cpu()
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
    epoch: int = -1,
    split: str = "test",
    dataroot: str | Path | None = None,
    out_dir: str | Path | None = None,
    device: str = "auto",
    save_images: bool = True,
) -> dict[str, Any]:
    """Evaluate a checkpoint on a split; write triplets and ``metrics.json`` to ``out_dir``.

    ``out_dir`` defaults to ``<experiment>/test/epoch_NNNN``. Returns the report
    that was written (mean metrics under ``'metrics'``).
    """
    dev = resolve_device(device)
    generator, config, state, path = load_generator(experiment_dir, epoch, dev)
    dataset = eval_dataset(config, split, dataroot)
    trained = int(state["epoch"])
    suffix = "_interrupted" if state.get("interrupted") else ""
    out = (
        Path(out_dir)
        if out_dir
        else Path(experiment_dir) / TEST_DIR / layout.evaluation_dir_name(trained, suffix)
    )
    out.mkdir(parents=True, exist_ok=True)
    result = evaluate_generator(generator, dataset, dev, out if save_images else None)
    report = {
        "experiment": str(Path(experiment_dir)),
        "checkpoint": str(path),
        "epoch": trained,
        "interrupted": bool(state.get("interrupted")),
        "split": split,
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
