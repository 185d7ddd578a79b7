"""What a run reports once per epoch: validation, best checkpoint, LR, throughput, run info.

The trainer calls three hooks (main process only): :meth:`RunMonitor.start`
once the networks exist (and a resume has been loaded), :meth:`epoch_started`
before an epoch's first batch and :meth:`epoch_finished` after its time is
recorded. Nothing here runs inside the hot loop, so the step rate is
unchanged; the per-epoch work is a validation every
``visualizer.visdom.val_every`` epochs (and after the last epoch) on at most
``val_max_images`` items, and a few small files and dashboard windows.

Files (nectargan/records.py) are written whether or not the dashboard is
on; windows (nectargan/visualizer/visdom/panels.py) only when it is. A resume
reloads the rows up to the checkpoint's epoch (dropping later ones: no epoch
is ever shown twice) and re-plots them, so the series continue.

Failures here (a full disk, a dashboard bug) are logged and never stop training.
"""

from __future__ import annotations

import math
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nectargan.config import default_config_dict
from nectargan.runs import records as rm
from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers.resume.pending import pending_report
from nectargan.trainers.timing import read_timing
from nectargan.trainers.validation import Validator, best_path, drop_best, write_best
from nectargan.visualizer.visdom.panels import (
    LR,
    RUN_INFO,
    RUN_INFO_SIZE,
    RUN_INFO_TITLE,
    THROUGHPUT,
    VAL_METRICS,
    flat_changes,
    lr_points,
    run_info_html,
    throughput_points,
    val_points,
)


def _n_params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


class RunMonitor:
    """Per-epoch reporting for one trainer (duck-typed: see the attributes used below)."""

    def __init__(self, trainer: Any, validator: Validator | None) -> None:
        vcfg = trainer.config.visualizer.visdom
        self.trainer = trainer
        self.validator = validator
        self.val_every = int(vcfg.val_every)
        self.experiment_dir = Path(trainer.experiment_dir)
        self.last_val: dict[str, Any] | None = None  # the latest validation row
        self._unwritten: deque[tuple[str, dict[str, Any]]] = deque()  # rows a full disk refused
        self.best: dict[str, Any] | None = None
        self._lrs: dict[str, float] = {}
        self._run_started: float | None = None
        self._epochs_this_run = 0
        self._warned: set[str] = set()
        self.pending: dict[str, Any] | None = None  # the resumed epoch's unwritten report
        self._reported_through = 0  # the last epoch whose report is written

    # -- hooks ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load what an earlier run of this experiment recorded, then show it all.

        The rows are held only here: later epochs append their own row to the
        files and the dashboard, so nothing kept grows with the run's length.
        """
        done = self.trainer.epochs_completed
        exp = self.experiment_dir
        header = self.trainer.run.resume_header
        self.pending = pending_report(exp, header) if header is not None else None
        self._reported_through = done
        val_rows = rm.rows_up_to(rm.read_val_metrics(exp), done)
        stats_rows = rm.rows_up_to(rm.read_epoch_stats(exp), done)
        self.last_val = val_rows[-1] if val_rows else None
        self._guard(
            "restore best.pt", lambda: setattr(self, "best", self._restore_best(done, val_rows))
        )
        self._guard("write the run files", lambda: self._write_files(val_rows, stats_rows))
        self._guard("update the dashboard", lambda: self._show_history(val_rows, stats_rows))
        self._guard("write the run info", self._publish_run_info)

    def epoch_started(self) -> None:
        if self._run_started is None:
            self._run_started = time.perf_counter()
        self._lrs = dict(self.trainer.learning_rates())

    def epoch_finished(self) -> None:
        """After epoch ``epochs_completed``: stats, validation when due, files, dashboard."""
        epoch = self.trainer.epochs_completed
        self._epochs_this_run += 1
        self._report(self._stats_row(epoch), epoch, self.validation_due(epoch))

    def finish_pending(self) -> None:
        """The report a stop left out (:mod:`.resume.pending`), from the checkpoint's note:
        its rows as that epoch would have written them (the time from ``timing.json``)."""
        note = self.pending
        if note is None:
            return
        epoch = int(note["epoch"])
        have_stats = any(r["epoch"] == epoch for r in rm.read_epoch_stats(self.experiment_dir))
        stats = None if have_stats else self._noted_stats_row(note)
        self._report(stats, epoch, bool(note.get("validate")) and self.validator is not None)
        self.pending = None

    def take_pending(self) -> dict[str, Any] | None:
        """The report to write before training on: a resume's, or this trainer's own last
        epoch's when a stop cut its report short (``fit()`` called again on it)."""
        if self.pending is None and self.trainer.epochs_completed > self._reported_through:
            self.pending = self.report_note()
        return self.pending

    def report_note(self) -> dict[str, Any]:
        """What a resume needs to write this epoch's report if a stop comes before it."""
        if self.pending is not None:  # still unwritten: keep the original note
            return dict(self.pending)
        epoch = self.trainer.epochs_completed
        return {
            "epoch": epoch,
            "lrs": dict(self._lrs),
            "images": self._images_this_session(),
            "validate": self.validation_due(epoch),
        }

    def _report(self, stats: dict[str, Any] | None, epoch: int, validate: bool) -> None:
        val = None
        if validate:
            val = self._guard("validate", lambda: self.validator.run(self.trainer.gen, epoch).row())
        if val is not None:
            self.last_val = val
            self._guard("update best.pt", lambda: self._update_best(val))
        self._guard("write the run files", lambda: self._append_files(stats, val))
        self._guard("update the dashboard", lambda: self._show_epoch(stats, val))
        self._guard("write the run info", self._publish_run_info)
        self._reported_through = max(self._reported_through, epoch)

    def summary(self) -> str:
        """``; val L1 0.0512 (best 0.0498 @ 7)`` after an epoch that was validated, else ''."""
        last = self.last_val
        if last is None or last["epoch"] != self.trainer.epochs_completed:
            return ""
        text = f"; val L1 {last['l1']:.4f} PSNR {last['psnr']:.2f} SSIM {last['ssim']:.3f}"
        if self.best is not None:
            text += f" (best L1 {self.best['l1']:.4f} @ {self.best['epoch']})"
        return text

    def describe(self) -> str:
        """One line for the start of a run: what is validated, when, where it goes."""
        v = self.validator
        if self.val_every <= 0:
            return "validation: off (visualizer.visdom.val_every is 0)"
        if v is None:
            return "validation: off (the dataset has no images in val/ or test/)"
        return (
            f"validation: {v.n_images} {v.split} image(s) every {self.val_every} epoch(s) "
            f"-> {rm.VAL_METRICS_FILE}, {ckpt.CHECKPOINT_DIR}/{ckpt.BEST}"
        )

    def validation_due(self, epoch: int) -> bool:
        if self.validator is None or self.val_every <= 0:
            return False
        return epoch % self.val_every == 0 or epoch == self.trainer.total_epochs

    # -- rows ------------------------------------------------------------------------------

    def _stats_row(self, epoch: int) -> dict[str, Any]:
        t = self.trainer
        seconds = float(t.last_epoch_time)
        images = self._images_this_session()
        row = {"epoch": epoch, **{f"lr_{k}": v for k, v in self._lrs.items()}}
        row.update(
            images=images,
            seconds=round(seconds, 4),
            images_per_s=images / seconds if seconds > 0 else None,
        )
        return row

    def _noted_stats_row(self, note: dict[str, Any]) -> dict[str, Any]:
        timed = [e for e in read_timing(self.experiment_dir) if e.get("epoch") == note["epoch"]]
        seconds = float(timed[-1]["seconds"]) if timed else None
        images = int(note.get("images") or 0)
        row = {"epoch": note["epoch"], **{f"lr_{k}": v for k, v in note["lrs"].items()}}
        row.update(
            images=images,
            seconds=seconds,
            images_per_s=images / seconds if seconds else None,
        )
        return row

    def _images_this_session(self) -> int:
        """The images this session trained in the epoch: after a mid-epoch resume, not the
        batches an earlier session did (``last_epoch_time`` covers only this session's)."""
        t = self.trainer
        loader = t.train_loader
        per_rank = t.batches_per_epoch * loader.batch_size
        if not loader.drop_last:
            per_rank = min(per_rank, len(loader.dataset))
        per_rank -= t.batches_skipped * loader.batch_size  # whole batches, before the last
        return per_rank * t.world_size

    # -- best checkpoint -------------------------------------------------------------------

    def _restore_best(self, done: int, val_rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Which epoch ``best.pt`` holds, consistent with the rows a resume keeps."""
        stored = rm.read_val_best(self.experiment_dir)
        if (
            stored is not None
            and stored["epoch"] <= done
            and best_path(self.experiment_dir).is_file()
        ):
            return stored
        candidate = rm.best_row(val_rows)
        # the old best belongs to epochs this resume redoes: fall back to the best kept
        # epoch whose checkpoint still exists, else start the best over
        if (
            candidate is not None
            and ckpt.epoch_path(self.experiment_dir, candidate["epoch"]).is_file()
        ):
            write_best(self.experiment_dir, candidate["epoch"])
            return {"epoch": candidate["epoch"], "l1": candidate["l1"]}
        if stored is not None:
            drop_best(self.experiment_dir)
        return None

    def _update_best(self, val: dict[str, Any]) -> None:
        l1 = val["l1"]
        if not (isinstance(l1, float) and math.isfinite(l1)):
            return
        if self.best is not None and not l1 < self.best["l1"]:
            return
        write_best(self.experiment_dir, val["epoch"], self._state)
        self.best = {"epoch": val["epoch"], "l1": l1}

    def _state(self) -> dict[str, Any]:
        state = self.trainer.checkpoint_state()
        state["interrupted"] = False
        return state

    # -- files -----------------------------------------------------------------------------

    def _split(self) -> str | None:
        return self.validator.split if self.validator is not None else None

    def _write_files(
        self, val_rows: list[dict[str, Any]], stats_rows: list[dict[str, Any]]
    ) -> None:
        """Whole files, once at the start: a resume's rows cut back to its checkpoint."""
        if val_rows or (self.experiment_dir / rm.VAL_METRICS_FILE).exists():
            rm.write_val_metrics(self.experiment_dir, val_rows, self._split(), self.best)
        if stats_rows or (self.experiment_dir / rm.EPOCH_STATS_FILE).exists():
            rm.write_epoch_stats(self.experiment_dir, stats_rows)

    def _append_files(self, stats: dict[str, Any] | None, val: dict[str, Any] | None) -> None:
        """The epoch's new rows only: the cost does not grow with the epochs done.

        A row whose write failed (a full disk) is kept and written first next time.
        """
        if stats is not None:
            self._unwritten.append((rm.EPOCH_STATS_FILE, stats))
        if val is not None:
            self._unwritten.append((rm.VAL_METRICS_FILE, val))
        while self._unwritten:
            name, row = self._unwritten[0]
            if name == rm.EPOCH_STATS_FILE:
                rm.append_epoch_stats(self.experiment_dir, row)
            else:
                rm.append_val_metrics(self.experiment_dir, row, self._split(), self.best)
            self._unwritten.popleft()

    def run_info(self) -> dict[str, Any]:
        """The ``run_info`` pane's content, as data (also ``run_info.json``)."""
        t = self.trainer
        done, total = t.epochs_completed, t.total_epochs
        elapsed = None if self._run_started is None else time.perf_counter() - self._run_started
        eta = None
        if elapsed is not None and self._epochs_this_run:
            eta = elapsed / self._epochs_this_run * max(0, total - done)
        v = self.validator
        best_ckpt = f"{ckpt.CHECKPOINT_DIR}/{ckpt.BEST}" if self.best is not None else None
        return {
            "experiment_dir": str(self.experiment_dir),
            "epoch": done,
            "total_epochs": total,
            "elapsed_s": elapsed,
            "eta_s": eta,
            "best": self.best,
            "best_checkpoint": best_ckpt,
            "device": str(t.device),
            "precision": t.precision.name,
            "dataset": {
                "train": len(t.train_loader.dataset),
                "val": v.n_images if v is not None else 0,
                "val_split": v.split if v is not None else None,
                "val_split_size": len(v.dataset) if v is not None else 0,
            },
            "parameters": {"G": _n_params(t.gen), "D": _n_params(t.disc)},
            "config_changes": flat_changes(t.config.to_dict(), default_config_dict()),
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _publish_run_info(self) -> None:
        info = self.run_info()
        rm.write_run_info(self.experiment_dir, info)
        vis = self.trainer.vis
        if vis is not None:
            vis.update_text(
                run_info_html(info), win=RUN_INFO, title=RUN_INFO_TITLE, size=RUN_INFO_SIZE
            )

    # -- dashboard -------------------------------------------------------------------------

    def _show_history(
        self, val_rows: list[dict[str, Any]], stats_rows: list[dict[str, Any]]
    ) -> None:
        vis = self.trainer.vis
        if vis is None:
            return
        for spec, points in (
            (VAL_METRICS, val_points(val_rows)),
            (LR, lr_points(stats_rows)),
            (THROUGHPUT, throughput_points(stats_rows)),
        ):
            _push(vis, spec, points)

    def _show_epoch(self, stats: dict[str, Any] | None, val: dict[str, Any] | None) -> None:
        vis = self.trainer.vis
        if vis is None:
            return
        if stats is not None:
            _push(vis, LR, lr_points([stats]))
            _push(vis, THROUGHPUT, throughput_points([stats]))
        if val is not None:
            _push(vis, VAL_METRICS, val_points([val]))

    def _guard(self, what: str, action: Any) -> Any:
        """``action()``; a failure is logged (once per kind), None returned, training goes on."""
        try:
            return action()
        except Exception as exc:  # a full disk or a dashboard bug must not end the run
            if what not in self._warned:
                self._warned.add(what)
                self.trainer.log(f"could not {what}: {type(exc).__name__}: {exc}")
            return None


def _push(vis: Any, spec: Any, points: dict[str, tuple[list, list]]) -> None:
    """Hand points to the visualizer, one call per x (an epoch)."""
    by_x: dict[float, dict[str, float]] = {}
    for name, (xs, ys) in points.items():
        for x, y in zip(xs, ys, strict=True):
            by_x.setdefault(float(x), {})[name] = math.nan if y is None else float(y)
    for x in sorted(by_x):
        vis.update_panel(spec, x, by_x[x])
