"""The hand-off: what the training thread's update calls leave for the engine.

The first stage of Handoff -> Engine -> Worker -> Transport (engine.py): update
calls only put snapshots here under a short lock, so training never waits on
encoding or the network. Loss steps queue up to ``PENDING_LIMIT`` calls (the
oldest are dropped and counted beyond it); only the newest image triplet is
kept; texts and panel points wait for the next engine cycle.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from nectargan.visualizer.visdom.images import Triplet
from nectargan.visualizer.visdom.panels import PanelSpec

PENDING_LIMIT = 100_000

LossValue = float | Any  # a float, or a 0-dim tensor on an accelerator resolved on the engine side


@dataclass(frozen=True)
class Step:
    """One ``update_loss_graphs`` call, snapshotted."""

    x: float
    losses_g: dict[str, LossValue]
    losses_d: dict[str, LossValue]

    @property
    def count(self) -> int:
        return len(self.losses_g) + len(self.losses_d)


class Handoff:
    """What update calls leave for the engine; the only state the training thread touches."""

    def __init__(self, limit: int = PENDING_LIMIT) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._steps: deque[Step] = deque()
        self._triplet: Triplet | None = None
        self._texts: dict[str, tuple[str, str | None, tuple[int, int] | None]] = {}
        self._panel_points: list[tuple[PanelSpec, float, dict[str, float]]] = []
        self.points_received = 0
        self.points_dropped = 0
        self.images_received = 0
        self.images_coalesced = 0

    def put_step(self, step: Step) -> None:
        with self._lock:
            if len(self._steps) >= self._limit:
                self.points_dropped += self._steps.popleft().count
            self._steps.append(step)
            self.points_received += step.count

    def put_triplet(self, triplet: Triplet) -> None:
        with self._lock:
            if self._triplet is not None:
                self.images_coalesced += 1
            self._triplet = triplet
            self.images_received += 1

    def put_text(
        self, win: str, text: str, title: str | None, size: tuple[int, int] | None = None
    ) -> None:
        with self._lock:
            self._texts[win] = (text, title, size)

    def put_panel_point(self, spec: PanelSpec, x: float, values: dict[str, float]) -> None:
        with self._lock:
            self._panel_points.append((spec, x, values))

    def take_panel_points(self) -> list[tuple[PanelSpec, float, dict[str, float]]]:
        with self._lock:
            points, self._panel_points = self._panel_points, []
        return points

    def take_steps(self) -> deque[Step]:
        with self._lock:
            steps, self._steps = self._steps, deque()
        return steps

    def take_triplet(self) -> Triplet | None:
        with self._lock:
            triplet, self._triplet = self._triplet, None
        return triplet

    def take_texts(self) -> dict[str, tuple[str, str | None, tuple[int, int] | None]]:
        with self._lock:
            texts, self._texts = self._texts, {}
        return texts
