"""VisdomVisualizer: live loss graphs and [x | y | z] image grids of a training run in Visdom.

The public API follows docs (spec page "NectarGAN API - Visdom"); what is
added is listed in docs/visualizer.md. Two modes:

* single-thread (default): each update call sends at once, on the caller's
  thread, with connect/read timeouts; when the server is gone or stalled it
  warns once per outage and carries on (retrying with backoff).
* threaded (:meth:`start_thread`, or ``with VisdomVisualizer(...)``): an
  update call only checks its inputs, snapshots them (images: detached CPU
  copies of the rows shown; losses: floats) and hands them over; a background
  thread sends every ``update_interval`` seconds.

This module is the training-thread side: argument checks and snapshots.
Sending, buffering bounds and outage handling live in engine.py; plots'
downsampling in series.py; image rules in images.py; HTTP in transport.py.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import torch

from nectargan.utils.numbers import check_int, is_int, is_number
from nectargan.visualizer.visdom.engine import (
    GRID,
    LOSS_D,
    LOSS_G,
    Engine,
    VisualizerStats,
    Worker,
)
from nectargan.visualizer.visdom.handoff import LossValue, Step
from nectargan.visualizer.visdom.images import (
    IMAGE_FORMATS,
    Triplet,
    check_triplet,
    denorm,
    snapshot,
)
from nectargan.visualizer.visdom.panels import PANELS, PanelSpec
from nectargan.visualizer.visdom.transport import Endpoint, Transport, TransportError

__all__ = ["VisdomVisualizer", "VisualizerStats", "LOSS_G", "LOSS_D", "GRID"]

LOGGER = logging.getLogger("nectargan.visualizer")

START_HINT = "nectargan visdom start"
DEFAULT_MAX_POINTS = 5000
DEFAULT_MAX_IMAGE_ROWS = 4
_CONNECT_PROBE_TIMEOUT = 3.0  # the constructor must fail fast when nothing answers


class VisdomVisualizer:
    """Loss graphs (``loss_G``, ``loss_D``) and an image grid (``comparison_grid``) in one env.

    Args:
        env: Visdom environment name.
        server: server URL (``http://host``; a bare host name works too).
        port: server port.
        update_interval: seconds between sends in threaded mode.
        max_points: points shown per loss series; beyond it the series is
            shown as means of 2, 4, 8, ... consecutive points (series.py).
        username, password: Visdom login, when the server requires one.
        autostart: when no server answers on a loopback address, start the
            managed one (``nectargan visdom start``) and connect to it.
        request_timeout: seconds, or ``(connect, read)``; applies to every request.
        stop_timeout: bound on :meth:`stop_thread`'s final flush and save.
        max_image_rows: batch samples shown as rows of the image grid.
        save_interval: seconds between automatic env saves (None: only on
            :meth:`save` and at stop).
        image_format: ``"png"`` (lossless) or ``"jpeg"`` (quality 95; cheaper
            to encode and to send, e.g. to a remote server).

    Raises:
        ConnectionError: no Visdom server answers at ``server:port``.
    """

    def __init__(
        self,
        env: str = "main",
        server: str = "http://localhost",
        port: int = 8097,
        *,
        update_interval: float = 2.0,
        max_points: int = DEFAULT_MAX_POINTS,
        username: str | None = None,
        password: str | None = None,
        autostart: bool = False,
        request_timeout: float | tuple[float, float] = (2.0, 5.0),
        stop_timeout: float = 5.0,
        max_image_rows: int = DEFAULT_MAX_IMAGE_ROWS,
        save_interval: float | None = 300.0,
        image_format: Literal["png", "jpeg"] = "png",
    ) -> None:
        if not isinstance(env, str) or not env:
            raise ValueError(f"env must be a non-empty string, got {env!r}")
        _check_positive("update_interval", update_interval)
        _check_positive("stop_timeout", stop_timeout)
        if save_interval is not None:
            _check_positive("save_interval", save_interval)
        check_int("max_points", max_points, minimum=2)
        check_int("max_image_rows", max_image_rows, minimum=1)
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
        self.env = env
        self.server = server
        self.port = port
        self.update_interval = float(update_interval)
        self.stop_timeout = float(stop_timeout)
        self.max_image_rows = max_image_rows
        self._endpoint = Endpoint.parse(server, port)
        transport = Transport(self._endpoint, request_timeout, username, password)
        self._connect(transport, autostart)
        self._engine = Engine(transport, env, max_points, save_interval, image_format)
        self._worker: Worker | None = None

    # -- connection -------------------------------------------------------------

    def _connect(self, transport: Transport, autostart: bool) -> None:
        """Open the env on the server (as Visdom's client does), or explain how to get a server."""
        try:
            self._open_env(transport)
            return
        except TransportError as exc:
            reason = exc
        from nectargan.visualizer.visdom import server as managed

        loopback = managed.is_loopback(self._endpoint.host)
        if autostart and loopback:
            try:
                self._autostart(managed, transport)
                return
            except (managed.ServerError, TransportError) as exc:
                reason = exc
        # A port held by something else needs another port, not a server on this one.
        port = getattr(reason, "free_port", None) or self.port
        # a short probe: this path already waited out one timeout, and an unanswered probe
        # still reads 'other' when the port accepts connections
        if (
            port == self.port
            and loopback
            and managed.probe(self._endpoint.host, port, timeout=0.3) == "other"
        ):
            port = managed.free_port_above(self._endpoint.host, port) or port
        hint = f"Start one with `{START_HINT} --port {port}`"
        if port != self.port:
            hint += f" and pass --port {port}"
        elif loopback and not autostart:
            hint += " or pass autostart=True"
        raise ConnectionError(
            f"No usable Visdom server at {self._endpoint.url} (port {self.port}): "
            f"{str(reason).rstrip('.')}. {hint}."
        )

    def _autostart(self, managed: Any, transport: Transport) -> None:
        """Start the managed server on the very loopback address asked for, then connect.

        A server this call started but cannot use is stopped again: autostart
        never leaves a server behind that nobody talks to.
        """
        host = self._endpoint.host
        bind = "127.0.0.1" if host == "localhost" else host
        _record, started = managed.start(managed.ServerOptions(port=self.port, host=bind))
        try:
            self._open_env(transport)
        except BaseException as exc:
            if started:
                managed.stop(self.port)
                if isinstance(exc, TransportError):
                    raise managed.ServerError(self._unusable(bind, exc)) from exc
            raise
        if started and not managed.assets_present():
            print(managed.MISSING_ASSETS_LINE, file=sys.stderr)

    def _unusable(self, bind: str, exc: TransportError) -> str:
        message = (
            f"a Visdom server was started on {bind}:{self.port}, but it did not accept the "
            f"env ({exc}), so it was stopped again"
        )
        if self._endpoint.base_path:
            message += (
                f"; the managed server serves no base path: leave "
                f"'{self._endpoint.base_path}' out of the server address, or start your own"
            )
        return message

    def _open_env(self, transport: Transport) -> None:
        transport.post(
            f"env/{quote(self.env, safe='')}", {"eid": self.env}, timeout=_CONNECT_PROBE_TIMEOUT
        )

    @property
    def env_url(self) -> str:
        """The env's page in a browser: the server's scheme, host, port and base path.

        The env name is percent-quoted (spaces, ``/``, ``#``, ``?`` and non-ASCII
        would otherwise break or redirect the link); the server unquotes it.
        """
        return self._endpoint.env_url(self.env)

    # -- modes ------------------------------------------------------------------

    @property
    def is_threaded(self) -> bool:
        """True between :meth:`start_thread` and :meth:`stop_thread`."""
        return self._worker is not None

    def start_thread(self) -> None:
        """Send from a background thread from now on. Idempotent."""
        if self._worker is None:
            self._worker = Worker(self._engine, self.update_interval)
            self._worker.start()

    def stop_thread(self, timeout: float | None = None) -> None:
        """Flush what is pending and save the env (within ``timeout`` s), end the thread.

        Back in single-thread mode afterwards. Idempotent; never raises.
        """
        worker, self._worker = self._worker, None
        if worker is None:
            return
        limit = self.stop_timeout if timeout is None else max(0.0, float(timeout))
        if not worker.stop(limit):
            LOGGER.warning(
                "Visdom visualizer thread still waiting on the server after %.1f s; it will end "
                "on its own when its request times out.",
                limit,
            )

    def close(self) -> None:
        """Stop the thread (flushing and saving) and drop the connection. Usable again afterwards."""
        self.stop_thread()
        with _held(self._engine.io_lock, self.stop_timeout) as held:
            if held:
                self._engine.transport.close()

    def __enter__(self) -> VisdomVisualizer:
        self.start_thread()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- updates (training thread: check, snapshot, hand over) ------------------

    def update_loss_graphs(
        self,
        graph_step: float,
        losses_G: Mapping[str, float | torch.Tensor],  # noqa: N803 - spec names
        losses_D: Mapping[str, float | torch.Tensor],  # noqa: N803
    ) -> None:
        """Add one point per loss at x = ``graph_step`` to ``loss_G`` and ``loss_D``."""
        step = Step(
            _check_step(graph_step),
            _snapshot_losses("losses_G", losses_G),
            _snapshot_losses("losses_D", losses_D),
        )
        self._engine.handoff.put_step(step)
        self._after_update()

    def update_images(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        z: torch.Tensor,
        title: str,
        image_size: int = 300,
    ) -> None:
        """Show x | y | z side by side in ``comparison_grid``, each ``image_size`` px square."""
        size = check_triplet(x, y, z, title, image_size)
        rows = self.max_image_rows
        self._engine.handoff.put_triplet(
            Triplet(
                snapshot(x, rows, size),
                snapshot(y, rows, size),
                snapshot(z, rows, size),
                title,
                size,
            )
        )
        self._after_update()

    def update_text(
        self,
        text: str,
        win: str = "text",
        title: str | None = None,
        *,
        size: tuple[int, int] | None = None,
    ) -> None:
        """Show ``text`` (HTML allowed) in window ``win``, replacing what it showed.

        ``size``: the pane's (width, height) in px (Visdom's default is small).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        plots = (LOSS_G, LOSS_D, GRID, *(spec.win for spec in PANELS))
        if not isinstance(win, str) or not win or win in plots:
            raise ValueError(
                f"win must be a non-empty name other than the plot windows, got {win!r}"
            )
        if title is not None and not isinstance(title, str):
            raise TypeError(f"title must be a str or None, got {type(title).__name__}")
        if size is not None and not (
            isinstance(size, tuple) and len(size) == 2 and all(_is_pixels(v) for v in size)
        ):
            raise ValueError(f"size must be (width, height) in pixels, got {size!r}")
        self._engine.handoff.put_text(win, text, title, size)
        self._after_update()

    def update_panel(self, spec: PanelSpec, x: float, values: Mapping[str, float]) -> None:
        """One point per series at x (an epoch) in the per-epoch window ``spec`` (panels.py).

        Used for ``val_metrics``, ``lr`` and ``throughput``; a point at an x the
        window already shows replaces it. NaN/Inf values are drawn as gaps.
        """
        if not isinstance(spec, PanelSpec):
            raise TypeError(f"spec must be a PanelSpec, got {type(spec).__name__}")
        unknown = sorted(set(values) - set(spec.series)) if isinstance(values, Mapping) else []
        if unknown:
            raise ValueError(
                f"window {spec.win!r} has the series {list(spec.series)}, got unknown {unknown}"
            )
        point = _snapshot_losses("values", values)
        self._engine.handoff.put_panel_point(
            spec, _check_step(x), {k: _as_host_float(v) for k, v in point.items()}
        )
        self._after_update()

    def _after_update(self) -> None:
        if self._worker is None:
            self._engine.try_flush()

    # -- env ----------------------------------------------------------------------

    def clear_env(self) -> None:
        """Close the windows this visualizer manages in its env and forget what they showed."""
        with _held(self._engine.io_lock, self.stop_timeout) as held:
            if not held:
                LOGGER.warning("Visdom visualizer busy; clear_env() skipped")
                return
            self._engine.clear(time.monotonic() + self.stop_timeout)

    def save(self) -> None:
        """Persist the env on the server (Visdom ``save``); threaded: done by the thread, soon."""
        self._engine.request_save()
        if self._worker is not None:
            self._worker.wake()
        else:
            self._engine.try_flush()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything pending now, on this thread; True when all of it was delivered."""
        limit = self.stop_timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + limit
        with _held(self._engine.io_lock, limit) as held:
            return held and self._engine.safe_flush(deadline, force=True)

    @property
    def stats(self) -> VisualizerStats:
        """Counters: points received/delivered/pending/dropped, gaps, failures, outages, ..."""
        return self._engine.stats()

    # -- helpers ------------------------------------------------------------------

    def _denorm_tensor(self, tensor: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """[-1, 1] (tanh output) -> [0, 1] for viewing; clamped unless ``clamp=False``."""
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"tensor must be a torch.Tensor, got {type(tensor).__name__}")
        return denorm(tensor, clamp)

    def __repr__(self) -> str:
        mode = "threaded" if self.is_threaded else "single-thread"
        return f"VisdomVisualizer(env={self.env!r}, server={self._endpoint.url!r}, {mode})"


class _held:
    """``with _held(lock, timeout) as held``: acquire with a timeout, release if acquired."""

    def __init__(self, lock: Any, timeout: float) -> None:
        self._lock, self._timeout, self._held = lock, timeout, False

    def __enter__(self) -> bool:
        self._held = self._lock.acquire(timeout=max(0.0, self._timeout))
        return self._held

    def __exit__(self, *exc: object) -> None:
        if self._held:
            self._lock.release()


def _check_positive(name: str, value: object) -> None:
    """A positive, finite number: ``inf`` would overflow the thread and socket timeouts."""
    if not is_number(value, finite=True) or not value > 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _check_step(step: object) -> float:
    if isinstance(step, torch.Tensor) and step.numel() == 1 and not step.dtype.is_complex:
        step = step.item()
    if not is_number(step):
        raise TypeError(f"graph_step must be a real number, got {type(step).__name__}")
    value = float(step)
    if not math.isfinite(value):
        raise ValueError(f"graph_step must be finite, got {value}")
    return value


def _snapshot_losses(name: str, losses: object) -> dict[str, LossValue]:
    """Loss name -> float (or, off the CPU, a detached 1-element tensor read later)."""
    if not isinstance(losses, Mapping):
        raise TypeError(f"{name} must be a dict of loss name -> value, got {type(losses).__name__}")
    if not losses:
        raise ValueError(f"{name} is empty: expected at least one loss value")
    out: dict[str, LossValue] = {}
    for key, value in losses.items():
        if not isinstance(key, str):
            raise TypeError(f"{name} keys must be str, got {key!r} ({type(key).__name__})")
        out[key] = value if type(value) is float else _loss_value(name, key, value)
    return out


def _is_pixels(value: object) -> bool:
    return is_int(value) and value > 0


def _as_host_float(value: LossValue) -> float:
    return value if isinstance(value, float) else float(value)


def _loss_value(name: str, key: str, value: object) -> LossValue:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name}[{key!r}] must be a single number, got a tensor of shape {tuple(value.shape)}"
            )
        if value.dtype.is_complex or value.dtype == torch.bool:
            raise TypeError(f"{name}[{key!r}] must be a real number, got a {value.dtype} tensor")
        if value.device.type == "cpu":
            return float(value)
        if value.device.type == "meta":
            raise ValueError(f"{name}[{key!r}] is on the meta device and holds no data")
        return value.detach().reshape(()).clone()  # read on the engine side: no device sync here
    if not is_number(value):
        raise TypeError(
            f"{name}[{key!r}] must be a number or a 1-element tensor, got {type(value).__name__}"
        )
    return float(value)
