"""Reviewing finished (or crashed) runs without a desktop GUI.

* :func:`read_experiment`: an experiment directory as one plain structure.
* :func:`replay`: its loss graphs, example triplets and summary into a Visdom env.
* :func:`write_report`: a static, offline HTML page with PNG loss curves.
* :func:`write_comparison`: one offline page comparing several runs
  (nectargan/review/compare.py holds what it shares with a multi-run replay).

Command line: ``nectargan replay`` and ``nectargan report`` (docs/review.md).
The report's names are imported on first use, so a replay never pays for
matplotlib (and nothing here imports torch). ``replay`` is imported eagerly:
the function shares its name with its module, and a lazy lookup would find
the module once anything imported ``nectargan.review.replay``.
"""

from __future__ import annotations

import importlib
from typing import Any

from nectargan.review.experiment_reader import Experiment, ExperimentError, read_experiment
from nectargan.review.replay import ReplayResult, replay

_LAZY = {
    "ReportError": "nectargan.review.report",
    "ReportResult": "nectargan.review.report",
    "write_report": "nectargan.review.report",
    "write_comparison": "nectargan.review.compare_report",
}

__all__ = [
    "Experiment",
    "ExperimentError",
    "ReplayResult",
    "ReportError",
    "ReportResult",
    "read_experiment",
    "replay",
    "write_comparison",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'nectargan.review' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
