"""The trainer's side of the live dashboard: connect once, one update thread per training run.

Every thread stop flushes the pending points and saves the whole env on the
server, which can hold an epoch end up for seconds; so the thread is started
once when training starts and stopped when it ends (normally, on Ctrl-C or on
an error), never in between. Nothing here may stop training: every failure is
a logged line and, at worst, a run without a dashboard.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from nectargan.losses.loss_log import read_log_arrays

Log = Callable[[str], None]


def log_line(message: str) -> None:
    """One ``nectargan:`` line on stderr."""
    print(f"nectargan: {message}", file=sys.stderr, flush=True)


def is_local_url(server: str) -> bool:
    """Whether a Visdom server URL points at this machine (where we may start one)."""
    host = urlparse(server if "://" in server else f"http://{server}").hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


class DashboardSteps:
    """Mixed into :class:`~nectargan.trainers.trainer.Trainer`: its dashboard's lifetime."""

    @property
    def vis(self) -> Any:
        """The connected :class:`VisdomVisualizer`, or None without a dashboard."""
        return self.dashboard.vis if self.dashboard is not None else None

    @vis.setter
    def vis(self, vis: Any) -> None:
        """Attach a visualizer you connected yourself (None: no dashboard)."""
        self.dashboard = Dashboard(vis, log_line) if vis is not None else None

    @property
    def dashboard_url(self) -> str | None:
        """The env's page in a browser (the visualizer's ``env_url``), or None."""
        return self.dashboard.url if self.dashboard is not None else None

    def init_visualizer(self) -> None:
        """Connect the dashboard; without a server, start one (local URLs) or train without it.

        Training never fails because of the dashboard: every problem here ends
        in a warning and ``self.vis = None``. When the trainer is dropped (or
        the process exits) with the update thread still running, the thread
        is stopped, so its last points are pushed and the env saved.
        """
        vcfg = self.config.visualizer.visdom
        if not vcfg.enable or not self.is_main_process:
            return
        self.dashboard = Dashboard.connect(vcfg, log_line)  # main process only: no rank check
        if self.dashboard is not None:
            weakref.finalize(self, self.dashboard.stop)

    def _start_dashboard_thread(self) -> None:
        if self.dashboard is not None:
            self.dashboard.start()

    def _stop_dashboard_thread(self) -> None:
        """Stop the update thread; it pushes its pending points and saves before it ends."""
        if self.dashboard is not None:
            self.dashboard.stop()

    def _finish_dashboard(self) -> None:
        """Training is over: stop the thread (flush + save) and close the visualizer."""
        if self.dashboard is not None:
            self.dashboard.finish()

    def dashboard_call(self, send: Callable[[Any], None]) -> None:
        """``send(self.vis)``; any error turns the dashboard off (one warning), training goes on."""
        if self.dashboard is None:
            return
        try:
            send(self.dashboard.vis)
        except Exception as exc:
            dashboard, self.dashboard = self.dashboard, None
            self.log(
                f"dashboard disabled after an error, training goes on without it: "
                f"{type(exc).__name__}: {exc}"
            )
            dashboard.stop()
            dashboard.finish()


class Dashboard:
    """One connected visualizer and the lifetime of its update thread.

    ``start()`` and ``finish()`` are idempotent, so the trainer can call them
    at every place training may begin or end without counting; ``thread_starts``
    says how many threads were really started (one per training run).
    """

    def __init__(self, vis: Any, log: Log) -> None:
        self.vis = vis
        self.log = log
        self.thread_starts = 0

    @classmethod
    def connect(cls, vcfg: Any, log: Log) -> Dashboard | None:
        """The dashboard for ``visualizer.visdom``, its env cleared; None (logged) without one.

        With ``autostart`` and a loopback URL the visualizer itself starts the
        managed server (``nectargan visdom start``) when none answers.
        """
        try:
            from nectargan.visualizer.visdom.visualizer import VisdomVisualizer
        except ImportError as exc:
            log(f"dashboard disabled: the Visdom visualizer cannot be imported ({exc})")
            return None
        where = f"{vcfg.server}:{vcfg.port}"
        try:
            vis = VisdomVisualizer(
                env=vcfg.env_name,
                server=vcfg.server,
                port=vcfg.port,
                update_interval=vcfg.update_interval,
                autostart=vcfg.autostart and is_local_url(vcfg.server),
            )
        except OSError as exc:  # ConnectionError and friends: training goes on without it
            log(f"dashboard disabled, training continues without it: {exc}")
            return None
        except ValueError as exc:
            log(f"dashboard disabled: bad visualizer.visdom setting for {where}: {exc}")
            return None
        try:
            vis.clear_env()
        except OSError as exc:
            log(f"could not clear Visdom env {vcfg.env_name!r}: {exc}")
        return cls(vis, log)

    @property
    def url(self) -> str:
        """Where to watch it in a browser."""
        return str(self.vis.env_url)

    @property
    def threaded(self) -> bool:
        return bool(self.vis.is_threaded)

    def start(self) -> None:
        """Send from the background thread from now on (a no-op while it runs)."""
        if self.vis.is_threaded:
            return
        try:
            self.vis.start_thread()
        except Exception as exc:  # the dashboard must never stop training
            self.log(f"dashboard thread did not start, updating inline instead ({exc})")
            return
        self.thread_starts += 1

    def stop(self) -> None:
        """End the thread after it has pushed its pending points and saved the env."""
        if not self.vis.is_threaded:
            return
        try:
            self.vis.stop_thread()
        except Exception as exc:
            self.log(f"dashboard thread did not stop cleanly ({exc})")

    def replot_losses(
        self,
        experiment_dir: Path,
        groups: Mapping[str, Sequence[str]],
        batches_per_epoch: int,
        every: int,
    ) -> int:
        """A resumed run: redraw ``loss_G``/``loss_D`` from the loss log, as if never stopped.

        The env is cleared when a run connects, so without this the loss windows of
        a resumed run would start where it resumed, while the per-epoch windows
        (val, lr, throughput) show the whole run. Only the records of display steps
        (batch index a multiple of ``every``) are drawn, at the live graph's x
        (``epoch + idx / batches``), so the windows match an uninterrupted run's.
        ``groups``: the loss names of each window (``{"G": [...], "D": [...]}``).
        Returns the number of x positions sent.
        """
        points = display_points(weighted_losses(experiment_dir), groups, batches_per_epoch, every)
        self.start()  # through the thread: one flush for the whole history
        for x in sorted(points):
            self.vis.update_loss_graphs(x, points[x].get("G", {}), points[x].get("D", {}))
        return len(points)

    def finish(self) -> None:
        """Training is over: stop the thread (flush + save) and drop the connection.

        The visualizer stays usable: a later update reconnects.
        """
        try:
            self.vis.close()
        except Exception as exc:
            self.log(f"dashboard did not close cleanly ({exc})")


def weighted_losses(experiment_dir: Path) -> dict[str, dict[str, np.ndarray]]:
    """Per loss, its epochs and weighted values (``raw * weight``; NaN for a null), read
    from the loss log's column files: a 1M-step run's resume does not parse 16M numbers."""
    pieces: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for segment in read_log_arrays(experiment_dir).segments:
        for name, cols in segment.losses.items():
            epochs, weighted = pieces.setdefault(name, ([], []))
            epochs.append(cols["epoch"])
            with np.errstate(over="ignore", invalid="ignore"):
                weighted.append(cols["raw"] * cols["weight"])
    return {
        name: {"epoch": np.concatenate(epochs), "weighted": np.concatenate(weighted)}
        for name, (epochs, weighted) in pieces.items()
    }


def display_points(
    losses: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
    batches_per_epoch: int,
    every: int,
) -> dict[float, dict[str, dict[str, float]]]:
    """``{x: {group: {loss: weighted value}}}`` of the loss log's display-step records.

    ``losses``: per loss, ``epoch`` and ``weighted`` columns (arrays, or lists with None
    for a null). The batch index is ``round(fraction of the epoch * batches)``, half to
    even as Python's ``round``, over whole columns at once.
    """
    out: dict[float, dict[str, dict[str, float]]] = {}
    for group, names in groups.items():
        for name in names:
            cols = losses.get(name) or {}
            epoch = np.asarray(cols.get("epoch", []), dtype=np.float64)
            weighted = np.asarray(cols.get("weighted", []), dtype=np.float64)  # None: NaN
            n = min(len(epoch), len(weighted))
            epoch, weighted = epoch[:n], weighted[:n]
            index = np.rint((epoch - np.floor(epoch)) * batches_per_epoch)
            shown = index % every == 0
            for x, value in zip(epoch[shown].tolist(), weighted[shown].tolist(), strict=True):
                out.setdefault(x, {}).setdefault(group, {})[name] = value
    return out
