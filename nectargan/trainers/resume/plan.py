"""Resuming a run: which config it continues with, what may change, one clean history.

Why this module: a resume must continue what the *checkpoint's* run was asked
to do (its own config, saved inside it), not the first run's ``config.json``
nor whatever ``--config`` file is at hand. Only settings that change neither
the networks nor the data may differ on resume (:data:`RESUMABLE`); the
rest are refused, naming the key. When the run restarts from an earlier
point than where the log ends (``--resume-epoch N``, a crash after the last
checkpoint, a mid-epoch checkpoint older than the last flush), the loss log
and ``timing.json`` are cut back to that point, so every reader sees one
monotonic history.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nectargan.errors import ConfigUserError
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.lock import busy_without_checkpoint
from nectargan.trainers.resume.choose import find_checkpoint
from nectargan.trainers.resume.pending import experiment_of, pending_report
from nectargan.utils.mapping import flatten

# Dotted keys (or prefixes ending in '.') that may change when a run is resumed.
RESUMABLE = (
    "train.epochs",
    "train.epochs_decay",
    "save.",
    "visualizer.",
    "common.device",
    "common.num_threads",
    "dataloader.num_workers",
    "dataloader.pin_memory",
    "train.compile",
    "train.channels_last",
    "train.resume.",
)
# Keys whose values shape the networks' weights: a mismatch names these, not state_dict keys.
ARCHITECTURE = ("train.generator.", "train.discriminator.", "dataloader.channels")


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in patterns)


def is_resumable(key: str) -> bool:
    return _matches(key, RESUMABLE)


def _show(value: Any) -> str:
    return json.dumps(value)


# -- the checkpoint's header --------------------------------------------------------------


def read_header(path: Path) -> dict[str, Any]:
    """The checkpoint's counters and config, read without loading its tensors (mmap)."""
    state = ckpt.load_checkpoint(path, mmap=True)
    if not isinstance(state.get("config"), Mapping) or "epoch" not in state:
        raise ckpt.CheckpointError(
            f"checkpoint {str(path)!r} has no config or epoch count; it cannot be resumed"
        )
    return state


# -- the config a resume continues with -----------------------------------------------------


@dataclass
class ResumePlan:
    """The checkpoint to continue from, the config to continue with, and what changed."""

    checkpoint: Path
    config: Any
    epochs_done: int
    changes: list[str] = field(default_factory=list)


def plan_resume(
    experiment_dir: str | Path,
    epoch: int,
    config_source: Any,
    overrides: Mapping[str, Any],
) -> ResumePlan:
    """The checkpoint's own config, plus the resumable changes asked for (others refused).

    ``config_source``: a ``--config`` file given with ``--resume`` (or None);
    ``overrides``: dotted keys from the flags.
    """
    from nectargan.config import Config

    try:
        path = find_checkpoint(experiment_dir, epoch)
    except ckpt.CheckpointError:  # none yet: say so if a run is training there right now
        busy = busy_without_checkpoint(experiment_dir, "--resume") if epoch == -1 else None
        if busy is not None:
            raise busy from None
        raise
    header = read_header(path)
    base = Config.load(dict(header["config"]))
    old = flatten(base.to_dict())
    asked: dict[str, Any] = {}
    if config_source is not None:
        Config.load(config_source)  # a bad file fails as it would without --resume
        for key, value in flatten(_explicit_settings(config_source)).items():
            if key == "dataloader.dataroot" and value is None:
                continue  # null: "the default data", i.e. what the run already uses
            if old.get(key) != value:
                asked[key] = value
    for key, value in overrides.items():
        items = flatten(value, f"{key}.") if isinstance(value, Mapping) else {key: value}
        asked.update(items)
    asked = {k: v for k, v in asked.items() if k not in old or old[k] != v}
    changes = {k: v for k, v in asked.items() if not k.startswith("train.resume.")}
    refused = sorted(k for k in changes if not is_resumable(k))
    if refused:
        details = "; ".join(
            f"{k}: the run has {_show(old.get(k))}, asked for {_show(changes[k])}" for k in refused
        )
        allowed = ", ".join(p.rstrip(".") + ("*" if p.endswith(".") else "") for p in RESUMABLE)
        raise ConfigUserError(
            f"--resume: cannot change {', '.join(refused)} when resuming ({details}); "
            f"that would change the networks or the data. Settings that may change on "
            f"resume: {allowed}. Start a new run for anything else"
        )
    config = base.with_overrides(asked)
    check_epochs(config, int(header["epoch"]), path, header)
    described = [f"{k} {_show(old.get(k))} -> {_show(v)}" for k, v in sorted(changes.items())]
    return ResumePlan(path, config, int(header["epoch"]), described)


def _explicit_settings(source: Any) -> Mapping[str, Any]:
    """The keys a ``--config`` file sets itself; those it leaves out ask for no change."""
    if isinstance(source, Mapping):
        return source
    if hasattr(source, "to_dict"):
        return source.to_dict()
    data = json.loads(Path(source).read_text(encoding="utf-8"))
    return data if isinstance(data, Mapping) else {}


def check_epochs(
    config: Any, epochs_done: int, path: Path, header: Mapping[str, Any] | None = None
) -> None:
    """Asking for fewer epochs than are done (or exactly as many) is a mistake, not a no-op;
    exactly as many is right when the last epoch's report is missing (:mod:`.pending`)."""
    t = config.train
    total = t.epochs + t.epochs_decay
    if total > epochs_done:
        return
    if total == epochs_done and header and pending_report(experiment_of(path), header):
        return
    raise ConfigUserError(
        f"--resume: {str(path)!r} has already completed {epochs_done} epoch(s), and the config "
        f"asks for {total} in all (train.epochs {t.epochs} + train.epochs_decay "
        f"{t.epochs_decay}); to train on, ask for more, e.g. --epochs "
        f"{max(epochs_done + 1 - t.epochs_decay, 0)} (total {epochs_done + 1})"
    )


def check_architecture(checkpoint_config: Mapping[str, Any], config: Any, path: Path) -> None:
    """Refuse a config whose networks differ from the checkpoint's, naming the keys."""
    old = flatten(checkpoint_config)
    new = flatten(config.to_dict())
    differing = sorted(
        k for k in set(old) | set(new) if _matches(k, ARCHITECTURE) and old.get(k) != new.get(k)
    )
    if not differing:
        return
    details = "; ".join(
        f"{k}: checkpoint {_show(old.get(k))}, config {_show(new.get(k))}" for k in differing
    )
    raise ckpt.CheckpointError(
        f"checkpoint {str(path)!r} was trained with different networks than this config "
        f"({details}); resume with the run's own settings (leave out --config and --set for "
        "these keys) or start a new run"
    )
