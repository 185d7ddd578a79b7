"""The delivery engine: hand-off from training, folding, sending, outages, the background thread.

Data flow. Update calls (training thread) only put snapshots into a
:class:`Handoff` under a short lock. :meth:`Engine.flush` (background thread,
or the caller in single-thread mode) folds pending loss points into the
windows, renders the newest image triplet, and sends every window that
changed, each whole, in one request.

Bounds (documented in docs/visualizer.md):

* Loss points waiting for the engine: at most ``PENDING_LIMIT`` update calls;
  beyond it the oldest are dropped and counted (``points_dropped``). The
  engine drains this queue every cycle, outage or not, so it only fills if a
  single request blocks for a long time at a very high update rate.
* Images: only the newest triplet is kept; replaced ones are counted
  (``images_coalesced``).
* Plots: each series shows at most ``max_points`` points (see series.py), so
  a window, and what it costs to send and to store, stays bounded however
  long the run; the per-epoch panels too (windows.PanelWindow).

Failures. Any failed request (refused, reset, timed out, HTTP error) starts an
outage: one warning is logged, sending pauses with exponential backoff
(``BACKOFF_START`` doubling up to ``BACKOFF_MAX`` seconds), loss points keep
being folded in, and the first success logs one warning that the server is
back. Because a failure drops the connection, that success runs on a new
connection, and every window is then sent again in full: a server that
restarted without our windows (or with stale saved ones) shows the whole run
again, not just the tail. Nothing here ever raises into the training loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from nectargan import experiment_layout as layout
from nectargan.visualizer.visdom.exit_gate import torch_work
from nectargan.visualizer.visdom.handoff import Handoff, LossValue
from nectargan.visualizer.visdom.panels import PANELS, RUN_INFO
from nectargan.visualizer.visdom.transport import Transport, TransportError
from nectargan.visualizer.visdom.windows import (
    ImageWindow,
    LineWindow,
    PanelWindow,
    TextWindow,
    Window,
)

LOGGER = logging.getLogger("nectargan.visualizer")

BACKOFF_START = 0.5
BACKOFF_MAX = 5.0
LOSS_G, LOSS_D, GRID = layout.LOSS_WINDOW_G, layout.LOSS_WINDOW_D, layout.IMAGE_GRID_WINDOW


@dataclass(frozen=True)
class VisualizerStats:
    """Counters since construction. A property of the visualizer; calling it also works."""

    points_received: int = 0  # loss values accepted from update calls
    points_delivered: int = 0  # of those, acknowledged by the server
    points_pending: int = 0  # accepted, not yet delivered
    points_dropped: int = 0  # dropped because the hand-off queue was full
    gaps: int = 0  # NaN/Inf values, shown as gaps
    images_received: int = 0
    images_sent: int = 0
    images_coalesced: int = 0  # replaced by a newer triplet before being sent
    requests: int = 0
    failures: int = 0  # failed requests
    outages: int = 0  # times the server was lost
    saves: int = 0
    connected: bool = True
    last_error: str | None = None
    shown_points: dict[str, int] = field(default_factory=dict)  # per window, after downsampling

    def __call__(self) -> VisualizerStats:
        return self


def _as_float(value: LossValue) -> float:
    return value if isinstance(value, float) else float(value)


class Engine:
    """Windows, delivery and outage state. ``io_lock`` serialises every flush."""

    def __init__(
        self,
        transport: Transport,
        env: str,
        max_points: int,
        save_interval: float | None = 300.0,
        image_format: str = "png",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.env = env
        self.max_points = max_points
        self.image_format = image_format
        self.save_interval = save_interval
        self.clock = clock
        self.handoff = Handoff()
        self.io_lock = threading.Lock()
        self.windows: dict[str, Window] = {}
        self._reset_windows()
        # Called after each delivered window with (win, raw points delivered so far, clock()).
        self.on_delivery: Callable[[str, int, float], None] | None = None
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._backoff = BACKOFF_START
        self._save_requested = False
        self._unsaved = False
        self._last_save = clock()
        self._delivered = 0
        self._discarded = 0
        self._gaps = 0
        self._images_sent = 0
        self._requests = 0
        self._failures = 0
        self._outages = 0
        self._saves = 0
        self._last_error: str | None = None
        self._logged_crash = False

    # -- called from the visualizer ------------------------------------------

    def request_save(self) -> None:
        self._save_requested = True

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def stats(self) -> VisualizerStats:
        h = self.handoff
        # list(): the thread may add a window or series meanwhile (copying a dict is atomic)
        shown = {
            w.win: max((len(s) for s in list(w.series.values())), default=0)
            for w in list(self.windows.values())
            if isinstance(w, LineWindow)
        }
        received = h.points_received
        return VisualizerStats(
            points_received=received,
            points_delivered=self._delivered,
            points_pending=max(0, received - self._delivered - h.points_dropped - self._discarded),
            points_dropped=h.points_dropped,
            gaps=self._gaps,
            images_received=h.images_received,
            images_sent=self._images_sent,
            images_coalesced=h.images_coalesced,
            requests=self._requests,
            failures=self._failures,
            outages=self._outages,
            saves=self._saves,
            connected=self._down_since is None,
            last_error=self._last_error,
            shown_points=shown,
        )

    def try_flush(self, deadline: float | None = None, force: bool = False) -> bool:
        """Flush now unless another flush holds the lock; never raises (training-thread safe)."""
        if not self.io_lock.acquire(blocking=False):
            return False
        try:
            return self.safe_flush(deadline, force)
        finally:
            self.io_lock.release()

    def safe_flush(self, deadline: float | None = None, force: bool = False) -> bool:
        """:meth:`flush`, with any unexpected error logged (once) instead of raised. Hold io_lock."""
        try:
            return self.flush(deadline, force)
        except Exception as exc:  # a bug must not reach the training loop
            self._failures += 1
            self._last_error = f"internal error: {exc!r}"
            if not self._logged_crash:
                self._logged_crash = True
                LOGGER.exception("Visdom visualizer: unexpected error while sending (continuing)")
            return False

    # -- the flush ------------------------------------------------------------

    def flush(self, deadline: float | None = None, force: bool = False) -> bool:
        """Fold pending updates in, then send what changed; True when nothing is left unsent.

        Outside an outage's backoff (or with ``force``), tries the server;
        ``deadline`` (a ``clock()`` time) bounds every request. Hold io_lock.
        """
        with torch_work():
            self._fold()
        if not force and self._down_since is not None and self.clock() < self._retry_at:
            return False
        with torch_work():
            self._render_images()
        if not self._send_windows(deadline):
            return False
        if self._save_requested or self._autosave_due():
            return self._save(deadline)
        return True

    def save_now(self, deadline: float | None = None) -> bool:
        """Persist the env on the server (Visdom ``save``). Hold io_lock."""
        return self._save(deadline)

    def clear(self, deadline: float | None = None) -> bool:
        """Forget everything shown and pending, and close our windows on the server. Hold io_lock."""
        discarded = sum(s.count for s in self.handoff.take_steps())
        self.handoff.take_triplet()
        self.handoff.take_panel_points()
        texts = self.handoff.take_texts()
        self._discarded += discarded + sum(
            w.raw_total - w.acked_total for w in self.windows.values() if isinstance(w, LineWindow)
        )
        names = list(dict.fromkeys([*self.windows, *texts]))
        self._reset_windows()
        try:
            for win in names:
                self._post("close", {"eid": self.env, "win": win}, deadline)
        except TransportError:
            return False
        return True

    # -- internals ------------------------------------------------------------

    def _reset_windows(self) -> None:
        texts = [w for w in self.windows.values() if isinstance(w, TextWindow)]
        panels = [w for w in self.windows.values() if isinstance(w, PanelWindow)]
        self.windows = {
            LOSS_G: LineWindow(LOSS_G, layout.loss_title("G"), self.max_points),
            LOSS_D: LineWindow(LOSS_D, layout.loss_title("D"), self.max_points),
            GRID: ImageWindow(GRID, self.image_format),
        }
        # The per-epoch panels and run_info are ours from the start (empty until used), so
        # clear_env closes what an earlier run left in the env; other text windows and
        # panels are remembered once seen, so a later clear closes them too.
        for spec in PANELS:
            self.windows[spec.win] = PanelWindow(spec, self.max_points)
        self.windows[RUN_INFO] = TextWindow(RUN_INFO)
        for w in texts:
            self.windows[w.win] = TextWindow(w.win)
        for p in panels:
            self.windows[p.win] = PanelWindow(p.spec, self.max_points)

    def _fold(self) -> None:
        g, d = self.windows[LOSS_G], self.windows[LOSS_D]
        assert isinstance(g, LineWindow) and isinstance(d, LineWindow)
        for step in self.handoff.take_steps():
            self._gaps += g.add(step.x, {k: _as_float(v) for k, v in step.losses_g.items()})
            self._gaps += d.add(step.x, {k: _as_float(v) for k, v in step.losses_d.items()})
        for spec, x, values in self.handoff.take_panel_points():
            panel = self.windows.get(spec.win)
            if not isinstance(panel, PanelWindow):
                panel = self.windows[spec.win] = PanelWindow(spec, self.max_points)
            panel.add(x, values)
        for win, (text, title, size) in self.handoff.take_texts().items():
            window = self.windows.get(win)
            if not isinstance(window, TextWindow):
                window = self.windows[win] = TextWindow(win)
            window.set_text(text, title, size)

    def _render_images(self) -> None:
        triplet = self.handoff.take_triplet()
        if triplet is not None:
            window = self.windows[GRID]
            assert isinstance(window, ImageWindow)
            window.set_triplet(triplet)

    def _send_windows(self, deadline: float | None) -> bool:
        # A connection opened mid-pass (maybe to a restarted server) has not seen the
        # windows sent earlier in the pass; the next pass catches them.
        for _ in range(3):
            epoch = self.transport.connection_count
            todo = [w for w in self.windows.values() if w.needs_send(epoch)]
            if not todo:
                return True
            for window in todo:
                if not self._send(window, deadline):
                    return False
        return not any(w.needs_send(self.transport.connection_count) for w in self.windows.values())

    def _send(self, window: Window, deadline: float | None) -> bool:
        version = window.version
        body = window.body(self.env)
        try:
            self._post("events", body, deadline)
        except TransportError:
            return False
        window.mark_sent(version, self.transport.connection_count)
        self._unsaved = True
        if isinstance(window, LineWindow):
            self._delivered += window.raw_total - window.acked_total
            window.acked_total = window.raw_total
            if self.on_delivery is not None:
                self.on_delivery(window.win, window.raw_total, self.clock())
        elif isinstance(window, ImageWindow):
            self._images_sent += 1
        return True

    def _autosave_due(self) -> bool:
        return (
            self.save_interval is not None
            and self._unsaved
            and self.clock() - self._last_save >= self.save_interval
        )

    def _save(self, deadline: float | None) -> bool:
        try:
            self._post("save", {"data": [self.env]}, deadline)
        except TransportError:
            return False
        self._saves += 1
        self._save_requested = False
        self._unsaved = False
        self._last_save = self.clock()
        return True

    def _post(self, endpoint: str, body: bytes | dict, deadline: float | None) -> str:
        """One request; failures are recorded (outage state) and re-raised as TransportError."""
        remaining = None if deadline is None else deadline - self.clock()
        if remaining is not None and remaining <= 0:
            raise TransportError("out of time before the request could be sent")
        self._requests += 1
        try:
            text = self.transport.post(endpoint, body, timeout=remaining)
        except TransportError as exc:
            self._on_failure(exc)
            raise
        self._on_success()
        return text

    def _on_failure(self, exc: TransportError) -> None:
        now = self.clock()
        self._failures += 1
        self._last_error = str(exc)
        if self._down_since is None:
            self._down_since = now
            self._outages += 1
            self._backoff = BACKOFF_START
            LOGGER.warning(
                "Visdom server %s lost: %s. Training continues; updates are kept and "
                "will be re-sent when it answers again.",
                self.transport.endpoint.url,
                exc,
            )
        else:
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        self._retry_at = now + self._backoff

    def _on_success(self) -> None:
        if self._down_since is not None:
            LOGGER.warning(
                "Visdom server %s is back after %.1f s; re-sending the dashboard.",
                self.transport.endpoint.url,
                self.clock() - self._down_since,
            )
            self._down_since = None
            self._backoff = BACKOFF_START


class Worker:
    """The background thread: a flush every ``interval`` seconds, a bounded final flush at stop."""

    def __init__(self, engine: Engine, interval: float) -> None:
        self.engine = engine
        self.interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._deadline: float | None = None
        self.thread = threading.Thread(target=self._run, name="nectargan-visdom", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float) -> bool:
        """Ask for a final flush and save within ``timeout`` s; True if the thread ended in time."""
        self._deadline = self.engine.clock() + max(0.0, timeout - 0.05)
        self._stopping.set()
        self._wake.set()
        self.thread.join(timeout + 0.2)
        return not self.thread.is_alive()

    def _run(self) -> None:
        clock = self.engine.clock
        due = clock() + self.interval
        while True:
            self._wake.wait(max(0.0, due - clock()))
            self._wake.clear()
            if self._stopping.is_set():
                break
            started = clock()
            if self.engine.io_lock.acquire(timeout=self.interval):
                try:
                    self.engine.safe_flush()
                finally:
                    self.engine.io_lock.release()
            # Fixed rate, so a slow server does not stretch the interval (latency stays
            # interval + one send); a little rest if a flush took longer than the interval.
            due = max(started + self.interval, clock() + self.interval / 4)
        self._final_flush()

    def _final_flush(self) -> None:
        engine, deadline = self.engine, self._deadline
        remaining = None if deadline is None else max(0.0, deadline - engine.clock())
        if not engine.io_lock.acquire(timeout=-1 if remaining is None else remaining):
            return
        try:
            engine.request_save()
            if not engine.safe_flush(deadline, force=True):
                stats = engine.stats()
                LOGGER.warning(
                    "Visdom visualizer stopped before everything was delivered and saved "
                    "(%d loss points pending: %s); what is pending is kept and sent by the "
                    "next update or start_thread().",
                    stats.points_pending,
                    stats.last_error or "out of time",
                )
        finally:
            engine.io_lock.release()
