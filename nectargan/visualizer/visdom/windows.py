"""The dashboard windows the visualizer owns, each able to serialise itself whole.

A window is always sent complete, as one ``/events`` request that creates or
replaces it (Visdom keeps a replaced window's place in the grid). Sending
whole windows is what makes recovery simple: whatever the server holds after
an outage (nothing, a stale saved copy, a partial window), the next send puts
the full picture back. It is also cheaper for the server than appending, which
deep-copies and diffs the whole pane (see series.py for how plots stay small).

Each window counts ``version`` (bumped on every change) and remembers which
version it delivered on which connection (``sent_version``, ``sent_epoch``),
so the engine re-sends exactly the windows that changed or that a new
connection (possibly a restarted server) has not seen.
"""

from __future__ import annotations

from collections.abc import Mapping

from nectargan.visualizer.visdom.encoding import data_uri
from nectargan.visualizer.visdom.images import Triplet, display_size, render_grid
from nectargan.visualizer.visdom.panels import (
    PanelSpec,
    image_body,
    lines_body,
    loss_spec,
    panel_body,
    text_body,
)
from nectargan.visualizer.visdom.series import Series

PANEL_MAX_POINTS = 5000  # per series of a per-epoch panel: 5000 epochs exact


class Window:
    """Change tracking shared by all windows."""

    def __init__(self, win: str) -> None:
        self.win = win
        self.version = 0
        self.sent_version = 0
        self.sent_epoch = 0  # 0: never delivered

    def has_content(self) -> bool:
        raise NotImplementedError

    def body(self, env: str) -> bytes:
        raise NotImplementedError

    def needs_send(self, epoch: int) -> bool:
        return self.has_content() and (
            self.version != self.sent_version or self.sent_epoch != epoch
        )

    def mark_sent(self, version: int, epoch: int) -> None:
        self.sent_version, self.sent_epoch = version, epoch

    def touch(self) -> None:
        self.version += 1


class LineWindow(Window):
    """A loss window: one series per loss name, in first-seen order, each in its own pane."""

    def __init__(self, win: str, title: str, max_points: int) -> None:
        super().__init__(win)
        self.title = title
        self.max_points = max_points
        self.series: dict[str, Series] = {}
        self.raw_total = 0  # raw points folded in, all series
        self.acked_total = 0  # raw points included in the last delivered send

    def has_content(self) -> bool:
        return bool(self.series)

    def add(self, x: float, values: Mapping[str, float]) -> int:
        """Fold one step in; return how many values were gaps (NaN/Inf)."""
        gaps = 0
        for name, y in values.items():
            series = self.series.get(name)
            if series is None:
                series = self.series[name] = Series(self.max_points)
            before = series.gaps
            series.add(x, y)
            gaps += series.gaps - before
        self.raw_total += len(values)
        self.touch()
        return gaps

    def body(self, env: str) -> bytes:
        spec = loss_spec(self.win, self.title, list(self.series))
        columns = {name: (f"[{s.x_json()}]", f"[{s.y_json()}]") for name, s in self.series.items()}
        return lines_body(env, spec, columns, mode="lines")


class ImageWindow(Window):
    """The newest image grid, kept encoded so it can be re-sent after an outage."""

    def __init__(self, win: str, image_format: str = "png") -> None:
        super().__init__(win)
        self.image_format = image_format
        self._fields: dict | None = None

    def has_content(self) -> bool:
        return self._fields is not None

    def set_triplet(self, triplet: Triplet) -> None:
        """Render and encode now (engine side); the encoded image is reused for every re-send."""
        width, height = display_size(triplet)
        self._fields = {
            "title": triplet.title,
            "src": data_uri(render_grid(triplet), self.image_format),
            "width": width,
            "height": height,
        }
        self.touch()

    def body(self, env: str) -> bytes:
        f = self._fields
        assert f is not None
        return image_body(env, self.win, f["src"], f["title"], (f["width"], f["height"]))


class TextWindow(Window):
    """A text (HTML) window, replaced by each update."""

    def __init__(self, win: str) -> None:
        super().__init__(win)
        self.text: str | None = None
        self.title: str | None = None
        self.size: tuple[int, int] | None = None

    def has_content(self) -> bool:
        return self.text is not None

    def set_text(self, text: str, title: str | None, size: tuple[int, int] | None = None) -> None:
        self.text, self.title, self.size = text, title, size
        self.touch()

    def body(self, env: str) -> bytes:
        return text_body(env, self.win, self.text or "", self.title, self.size)


class PanelWindow(Window):
    """A per-epoch window (panels.py): one x per epoch, exact up to ``max_points`` a series.

    A point at an x the series already has replaces it, so re-sending an
    epoch (e.g. a resumed run re-plotting its history) never duplicates it.
    A series that outgrows ``max_points`` moves into a :class:`Series`, the
    loss plots' bounded downsampling (buckets of 2, 4, 8 ... epochs; then a
    point at or before its last x is ignored), so a run of days keeps, sends
    and stores a bounded window at an amortised O(1) per point.
    """

    def __init__(self, spec: PanelSpec, max_points: int = PANEL_MAX_POINTS) -> None:
        super().__init__(spec.win)
        self.spec = spec
        self.max_points = max(2, max_points)
        self.points: dict[str, dict[float, float]] = {}  # exact, below the bound
        self.thinned: dict[str, Series] = {}  # past the bound
        self._last_x: dict[str, float] = {}

    def has_content(self) -> bool:
        return bool(self.points or self.thinned)

    def __len__(self) -> int:
        """Points held, all series."""
        return sum(map(len, self.points.values())) + sum(map(len, self.thinned.values()))

    def add(self, x: float, values: Mapping[str, float]) -> None:
        for name, y in values.items():
            if name in self.thinned:
                self._add_thinned(name, x, y)
                continue
            by_x = self.points.setdefault(name, {})
            by_x[x] = y
            if len(by_x) > self.max_points:
                self._thin(name)
        self.touch()

    def _thin(self, name: str) -> None:
        series = self.thinned[name] = Series(self.max_points)
        by_x = self.points.pop(name)
        for x in sorted(by_x):
            series.add(x, by_x[x])
        self._last_x[name] = max(by_x)

    def _add_thinned(self, name: str, x: float, y: float) -> None:
        if x > self._last_x[name]:
            self.thinned[name].add(x, y)
            self._last_x[name] = x

    def series(self) -> dict[str, tuple[list[float], list[float | None]]]:
        out: dict[str, tuple[list[float], list[float | None]]] = {}
        for name, by_x in self.points.items():
            xs = sorted(by_x)
            out[name] = (xs, [by_x[x] for x in xs])
        for name, thinned in self.thinned.items():
            out[name] = thinned.points()
        return out

    def body(self, env: str) -> bytes:
        return panel_body(env, self.spec, self.series())
