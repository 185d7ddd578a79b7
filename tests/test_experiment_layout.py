"""One torch-free module names the experiment's files and windows; one tolerant loss-log reader."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from nectargan import experiment_layout as layout
from nectargan.losses.loss_log import LossLog, read_log_files, read_loss_log
from nectargan.review.experiment_reader import read_experiment


def test_the_layout_and_the_readers_import_no_torch() -> None:
    code = (
        "import sys\n"
        "import nectargan.experiment_layout, nectargan.losses.loss_log\n"
        "import nectargan.review.experiment_reader, nectargan.review.replay\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_names_and_patterns_agree() -> None:
    assert layout.CHECKPOINT_RE.match(layout.checkpoint_name(3)).group(1) == "0003"
    assert layout.EXAMPLE_RE.match(layout.example_name(12, 1)).groups() == ("0012", "1")
    assert layout.SEGMENT_RE.match(layout.segment_name(7)).group(1) == "000007"
    assert layout.RESUME_CONFIG_RE.match(layout.resume_config_name(2)).group(1) == "2"
    assert layout.evaluation_dir_name(5, "_interrupted") == "epoch_0005_interrupted"
    assert (layout.loss_window("G"), layout.loss_title("G")) == ("loss_G", "Generator Loss")
    assert (layout.loss_window(""), layout.loss_title("")) == ("loss_other", "Other Losses")


def test_writers_use_the_layout() -> None:
    from nectargan.losses import loss_log
    from nectargan.review import replay as _  # noqa: F401  (loads the module)
    from nectargan.trainers import checkpoint, evaluate, pix2pix_trainer, timing, trainer
    from nectargan.visualizer.visdom import engine

    replay = sys.modules["nectargan.review.replay"]  # the package exports a function of that name

    assert (
        loss_log.INDEX_NAME == layout.LOSS_LOG_INDEX and loss_log.FIELDS == layout.LOSS_LOG_FIELDS
    )
    assert trainer.CONFIG_FILE == layout.CONFIG_FILE
    assert checkpoint.epoch_path("x", 4).name == layout.checkpoint_name(4)
    assert (evaluate.TEST_DIR, timing.TIMING_FILE) == (layout.TEST_DIR, layout.TIMING_FILE)
    assert pix2pix_trainer.DISPLAY_TITLE == replay.TRIPLET_TITLE == layout.TRIPLET_TITLE
    assert layout.loss_window("G") == engine.LOSS_G and layout.loss_window("D") == engine.LOSS_D


def _damaged_log(directory: Path) -> None:
    """Three segments; the second truncated as by a crash mid-write, the third ragged."""
    log = LossLog(directory)
    log.describe_loss("G_L1", {"tags": ["G"], "weight": 100.0, "schedule": None})
    for start in (0, 2, 4):
        cols = {
            "epoch": [0.0, 0.5],
            "step": [start, start + 1],
            "raw": [0.1, math.nan],
            "weight": [1, 1],
        }
        log.write_segment({"G_L1": cols})
    log.write_index()
    second = directory / layout.LOSS_LOG_DIR / layout.segment_name(2)
    second.write_text(second.read_text()[:20])
    third = directory / layout.LOSS_LOG_DIR / layout.segment_name(3)
    data = json.loads(third.read_text())
    data["losses"]["G_L1"]["weight"] = [1]
    third.write_text(json.dumps(data))


def test_one_tolerant_reader_behind_both_views(tmp_path: Path) -> None:
    exp_dir = tmp_path / "crashed_v1"
    _damaged_log(exp_dir)
    files = read_log_files(exp_dir)
    assert [s.number for s in files.segments] == [1, 3]
    assert any("000002.json: unreadable loss log segment" in p for p in files.problems)
    assert any("differ in length; 1 record(s) dropped" in p for p in files.problems)

    merged = read_loss_log(exp_dir)  # no longer fails on the first unreadable segment
    assert merged["losses"]["G_L1"]["step"] == [0, 1, 4]
    assert merged["losses"]["G_L1"]["weighted"] == [0.1, None, 0.1]
    assert merged["problems"] == files.problems

    exp = read_experiment(exp_dir)  # replay and report see the same records and problems
    assert exp.losses["G_L1"].step.tolist() == [0, 1, 4]
    assert all(p in exp.problems for p in files.problems)
    assert any("G_L1 3 of 6" in p for p in exp.problems)
