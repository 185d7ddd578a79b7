"""Where everything of one run lives on disk and on the dashboard: names only, no torch.

Trainers write these files and windows; ``replay``, ``report`` and the
experiment reader read them back. Keeping the names in one module that
imports nothing heavy lets a review start without loading torch, and means a
renamed file cannot leave a reader looking for the old name.

Experiment directory ``<output>/<name>_v<N>``::

    config.json                 effective config (config.resumeN.json per resume)
    loss_log.json               loss log index
    loss_log/000001.json        loss log segments, one per flush
    loss_log/000001.columns     the same records as float64 columns (losses/loss_columns.py)
    timing.json                 wall time of each epoch
    checkpoints/epoch_0003.pt   after 3 completed epochs (interrupted.pt, latest.json)
    checkpoints/best.pt         the epoch with the best validation L1 (a link or copy)
    val_metrics.json            one row per validation: epoch, L1, PSNR, SSIM, images, seconds
    epoch_stats.json            one row per epoch: learning rates, images/s, seconds
    run_info.json               what the run_info window shows, as data
    run_status.json             state (running, finished, ...), pid, sessions: runs/status.py
    train.log                   the output of a run the Toolbox started (nectargan toolbox)
    examples/epoch_0003_0.png   example triplets after 3 completed epochs
    test/epoch_0003/            `nectargan test` outputs: metrics.json + triplets
    report/                     `nectargan report` output
    export/epoch_0003.onnx      `nectargan export` output (.torchscript.pt for TorchScript)
"""

from __future__ import annotations

import re
from pathlib import Path

# -- files ------------------------------------------------------------------------------

CONFIG_FILE = "config.json"
RESUME_CONFIG_RE = re.compile(r"^config\.resume(\d+)\.json$")

LOSS_LOG_INDEX = "loss_log.json"
LOSS_LOG_DIR = "loss_log"
LOSS_LOG_FORMAT = "nectargan.loss_log"
LOSS_LOG_VERSION = 1
# Per loss, parallel columns: the raw (unweighted) value and the weight applied at that step.
LOSS_LOG_FIELDS = ("epoch", "step", "raw", "weight")
SEGMENT_RE = re.compile(r"^(\d+)\.json$")

TIMING_FILE = "timing.json"

CHECKPOINT_DIR = "checkpoints"
INTERRUPTED = "interrupted.pt"
MID_EPOCH = "mid_epoch.pt"  # the rolling time-based checkpoint (save.every_minutes)
LATEST = "latest.json"
CHECKPOINT_RE = re.compile(r"^epoch_(\d+)\.pt$")
BEST_CHECKPOINT = "best.pt"
PRUNED = "pruned.json"  # epochs whose checkpoints save.keep_last deleted

VAL_METRICS_FILE = "val_metrics.json"
EPOCH_STATS_FILE = "epoch_stats.json"
RUN_INFO_FILE = "run_info.json"
RUN_STATUS_FILE = "run_status.json"  # the run's own status record (nectargan/runs/status.py)
LOCK_FILE = ".nectargan.lock"  # held (flock) by the one live run in this directory
TRAIN_LOG = "train.log"  # stdout and stderr of a run the Toolbox started, appended per session

EXAMPLES_DIR = "examples"
EXAMPLE_RE = re.compile(r"^epoch_(\d+)_(\d+)\.png$")

TEST_DIR = "test"
METRICS_FILE = "metrics.json"

REPORT_DIR = "report"

EXPORT_DIR = "export"


def resume_config_name(n: int) -> str:
    """The config a run's ``n``-th resume (1-based) exports next to ``config.json``."""
    return f"config.resume{n}.json"


def segment_name(number: int) -> str:
    """Loss log segment file ``number`` (1-based): ``000001.json``."""
    return f"{number:06d}.json"


def checkpoint_name(epochs_completed: int) -> str:
    """The checkpoint written after ``epochs_completed`` epochs: ``epoch_0003.pt``."""
    return f"epoch_{epochs_completed:04d}.pt"


def example_name(epochs_completed: int, k: int) -> str:
    """Example triplet ``k`` saved after ``epochs_completed`` epochs: ``epoch_0003_0.png``."""
    return f"epoch_{epochs_completed:04d}_{k}.png"


def evaluation_dir_name(epochs_completed: int, suffix: str = "") -> str:
    """``nectargan test``'s folder (in ``test/``) for the checkpoint after that many epochs."""
    return f"epoch_{epochs_completed:04d}{suffix}"


def loss_log_index(experiment_dir: str | Path) -> Path:
    return Path(experiment_dir) / LOSS_LOG_INDEX


def loss_log_dir(experiment_dir: str | Path) -> Path:
    return Path(experiment_dir) / LOSS_LOG_DIR


# -- dashboard (Visdom windows) ---------------------------------------------------------

LOSS_WINDOW_G = "loss_G"
LOSS_WINDOW_D = "loss_D"
IMAGE_GRID_WINDOW = "comparison_grid"
EXAMPLES_WINDOW = "examples"
SUMMARY_WINDOW = "summary"
COMPARISON_WINDOW = "comparison"  # `nectargan replay A B`: best epochs, config differences
LOSS_TITLES = {"G": "Generator Loss", "D": "Discriminator Loss"}
TRIPLET_TITLE = "real_A | fake_B | real_B"
# per-epoch windows (nectargan/visualizer/visdom/panels.py draws them)
VAL_METRICS_WINDOW = "val_metrics"
LR_WINDOW = "lr"
THROUGHPUT_WINDOW = "throughput"
RUN_INFO_WINDOW = "run_info"


def loss_window(tag: str) -> str:
    """The line window of one loss tag (``G`` -> ``loss_G``; untagged -> ``loss_other``)."""
    return f"loss_{tag}" if tag else "loss_other"


def loss_title(tag: str) -> str:
    """Its title: the live dashboard's for G and D, ``"<tag> Loss"`` otherwise."""
    return LOSS_TITLES.get(tag, f"{tag} Loss" if tag else "Other Losses")
