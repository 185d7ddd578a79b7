"""``--auto-resume``: one command for the first start and every requeue of a cluster job.

Why: a requeued job (SLURM ``--requeue``, a restarted Kubernetes pod) runs
the *same* command again, and without this each run would start a fresh
``<name>_v<N+1>`` from scratch. :func:`decide` looks at the existing
``<output>/<name>_v*`` directories, newest first, and picks what to do:

* the newest one made from the **same run setup** that has a checkpoint:
  resume it, or, when it has done every epoch asked for, report it complete
  (the command then exits 0 and writes nothing);
* none: start a new version.

"Same run setup" means every setting a resume may not change is equal
(:func:`nectargan.trainers.resume.is_resumable`: the networks, the data, the
losses, the optimiser settings...). The settings a resume may change (the
epoch counts, ``save.*``, ``visualizer.*``, the device, workers...) take the
command's values, as ``--resume`` would. A directory of a different setup
is left alone and named with the first difference: a job whose config was
edited between requeues starts a new version rather than failing on every
requeue, and nothing of the old run is touched.

A matching directory that another process is training in right now is
refused (:class:`~nectargan.trainers.lock.ExperimentBusy`, exit 2), as a
second ``--resume`` of it would be.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.errors import UserError
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.data import synthetic_dataroot
from nectargan.trainers.experiment import existing_versions
from nectargan.trainers.lock import holder_if_locked
from nectargan.trainers.resume import plan as resuming
from nectargan.trainers.resume.choose import LATEST, find_checkpoint
from nectargan.trainers.resume.pending import pending_report
from nectargan.utils.json_files import read_json_object

# Where the experiment lives: these locate the directory, they are not compared.
LOCATION_KEYS = ("common.output_directory", "common.experiment_name")


class AlreadyComplete(UserError):
    """The run this command describes has finished every epoch: nothing to do (exit 0)."""

    exit_code = 0


@dataclass
class Decision:
    """What ``--auto-resume`` does: resume ``checkpoint`` in ``experiment_dir``, report the
    run complete, or (both None) start a new experiment; ``notes`` say why."""

    experiment_dir: Path | None = None
    checkpoint: Path | None = None
    complete: bool = False
    epochs_done: int = 0
    batches_done: int = 0
    notes: list[str] = field(default_factory=list)


def _normal_dataroot(value: Any, config_like: dict[str, Any]) -> str | None:
    """A dataroot as an absolute path; null means the built-in synthetic dataset."""
    if value is None:
        output = config_like.get("common.output_directory", "output")
        synthetic = {
            key.rsplit(".", 1)[1]: v
            for key, v in config_like.items()
            if key.startswith("dataloader.synthetic.")
        }
        value = synthetic_dataroot(output, synthetic)
    return str(Path(value).expanduser().resolve())


def setup_differences(run_config: dict[str, Any], config: Any) -> list[str]:
    """The settings that make ``config`` a different run than ``run_config`` (its config.json)."""
    from nectargan.config import Config

    old = resuming.flatten(Config.load(run_config).to_dict())
    new = resuming.flatten(config.to_dict())
    out = []
    for key in sorted(set(old) | set(new)):
        if resuming.is_resumable(key) or key in LOCATION_KEYS:
            continue
        a, b = old.get(key), new.get(key)
        if key == "dataloader.dataroot":
            a, b = _normal_dataroot(a, old), _normal_dataroot(b, new)
        if a != b:
            out.append(f"{key}: the run has {json.dumps(a)}, this command {json.dumps(b)}")
    return out


def _run_config(experiment_dir: Path) -> dict[str, Any] | None:
    return read_json_object(experiment_dir / layout.CONFIG_FILE)


def decide(config: Any, log: Callable[[str], None]) -> Decision:
    """What this command should do with the experiments already in ``common.output_directory``."""
    common = config.common
    output = Path(common.output_directory)
    decision = Decision()
    for version in reversed(existing_versions(output, common.experiment_name)):
        path = output / f"{common.experiment_name}_v{version}"
        if _consider(path, config, decision):
            break
    for note in decision.notes:
        log(f"auto-resume: {note}")
    return decision


def _consider(path: Path, config: Any, decision: Decision) -> bool:
    """Fill ``decision`` from ``path`` and return True when it is the one to continue."""
    run_config = _run_config(path)
    if run_config is None:
        decision.notes.append(f"skipping {path}: no readable {layout.CONFIG_FILE}")
        return False
    try:
        differences = setup_differences(run_config, config)
    except UserError as exc:
        decision.notes.append(f"skipping {path}: its {layout.CONFIG_FILE} does not load ({exc})")
        return False
    if differences:
        more = f" (and {len(differences) - 1} more)" if len(differences) > 1 else ""
        decision.notes.append(f"skipping {path}: a different run setup, {differences[0]}{more}")
        return False
    holder = holder_if_locked(path)
    if holder is not None:
        raise _busy(path, holder)
    try:
        checkpoint = find_checkpoint(path, LATEST)
    except ckpt.CheckpointError:
        decision.notes.append(f"skipping {path}: same setup, but no checkpoint to resume from")
        return False
    header = resuming.read_header(checkpoint)  # a broken file: named, with the fix
    decision.experiment_dir, decision.checkpoint = path, checkpoint
    decision.epochs_done = int(header["epoch"])
    position = header.get("position") or {}
    decision.batches_done = int(position.get("batches_done", 0))
    total = config.train.epochs + config.train.epochs_decay
    decision.complete = decision.epochs_done >= total and not decision.batches_done
    if decision.complete and pending_report(path, header) is not None:
        decision.complete = False  # the last epoch's report is missing: write it first
    return True


def _busy(path: Path, holder: int | None) -> UserError:
    from nectargan.trainers.lock import ExperimentBusy

    who = f"pid {holder}" if holder else "another process"
    return ExperimentBusy(
        f"--auto-resume: experiment {str(path)!r} of this run setup is in use by another "
        f"training run ({who}); a second job for the same run is refused"
    )


def describe(decision: Decision, total_epochs: int) -> str:
    """One line for the log: what is resumed, from which file and where in the training."""
    if decision.complete:
        return (
            f"{decision.experiment_dir} is already complete ({decision.epochs_done} of "
            f"{total_epochs} epoch(s) done); nothing to train"
        )
    where = f"after epoch {decision.epochs_done}"
    if decision.batches_done:
        where = f"epoch {decision.epochs_done + 1} after batch {decision.batches_done}"
    name = decision.checkpoint.name if decision.checkpoint else "?"
    return f"continuing {decision.experiment_dir} from checkpoints/{name} ({where})"
