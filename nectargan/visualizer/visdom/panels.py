"""Line windows of stacked panes: the loss windows and the per-epoch ones, and ``run_info``.

``val_metrics``, ``lr`` and ``throughput`` have one point per epoch (or per
validation), so they are small and always sent whole; ``loss_G``/``loss_D`` have
one pane per loss. Quantities with different units or scales
(L1 near 0.05, PSNR near 20 dB, SSIM near 0.8) share one window as stacked
panes: each pane has its own y axis and all share the epoch axis, so every
curve stays readable however far apart the values are.

Torch-free and network-free: the live visualizer (engine side) and
``nectargan replay`` build the very same ``/events`` bodies from here, so a
replayed run looks exactly like the live one. Window ids and series names
are API: tests and users read them back from the server.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nectargan import experiment_layout as layout
from nectargan.utils.durations import format_duration

PANE_GAP = 0.06  # fraction of the plot height between stacked panes


@dataclass(frozen=True)
class Pane:
    """One y axis of a panel and the series drawn against it."""

    ylabel: str
    series: tuple[str, ...]


@dataclass(frozen=True)
class PanelSpec:
    """A per-epoch line window: id, title and its panes (top to bottom)."""

    win: str
    title: str
    panes: tuple[Pane, ...]
    xlabel: str = "Epoch"

    @property
    def series(self) -> tuple[str, ...]:
        return tuple(name for pane in self.panes for name in pane.series)

    def pane_of(self, name: str) -> int:
        for i, pane in enumerate(self.panes):
            if name in pane.series:
                return i
        raise KeyError(name)


VAL_METRICS = PanelSpec(
    layout.VAL_METRICS_WINDOW,
    "Validation metrics",
    (Pane("L1 (lower is better)", ("L1",)), Pane("PSNR dB", ("PSNR",)), Pane("SSIM", ("SSIM",))),
)
LR = PanelSpec(layout.LR_WINDOW, "Learning rate", (Pane("learning rate", ("G", "D")),))
THROUGHPUT = PanelSpec(
    layout.THROUGHPUT_WINDOW,
    "Throughput",
    (Pane("images/s", ("images/s",)), Pane("s/epoch", ("s/epoch",))),
)
RUN_INFO = layout.RUN_INFO_WINDOW
RUN_INFO_TITLE = "Run info"
RUN_INFO_SIZE = (460, 420)  # px; Visdom's default text pane is too small for the table
PANELS = (VAL_METRICS, LR, THROUGHPUT)
PANEL_SIZE = (480, 420)  # px, for up to three panes
PANE_HEIGHT = 110  # px added for each pane past three

Points = Mapping[str, tuple[Sequence[float], Sequence[float | None]]]


def pane_domains(n: int) -> list[tuple[float, float]]:
    """Vertical ``[bottom, top]`` of each of ``n`` panes, top pane first."""
    height = (1.0 - PANE_GAP * (n - 1)) / n
    out = []
    for i in range(n):
        top = 1.0 - i * (height + PANE_GAP)
        out.append((round(max(0.0, top - height), 4), round(top, 4)))
    return out


def _axis_key(i: int) -> str:
    """Plotly's layout key of pane ``i``'s y axis (``yaxis``, ``yaxis2``, ...)."""
    return "yaxis" if i == 0 else f"yaxis{i + 1}"


def _axis_ref(i: int) -> str:
    return "y" if i == 0 else f"y{i + 1}"


def panel_size(spec: PanelSpec) -> tuple[int, int]:
    """Width and height in px: three panes fit the default; each further pane adds room."""
    extra = max(0, len(spec.panes) - 3) * PANE_HEIGHT
    return PANEL_SIZE[0], PANEL_SIZE[1] + extra


def panel_layout(spec: PanelSpec, flat: Mapping[int, float] | None = None) -> dict[str, Any]:
    """Plotly's layout: the shared epoch axis at the bottom, one y axis per pane.

    ``flat``: panes whose values are all one number, by index. Plotly pads a
    zero-height range by +-1, which draws a constant lr of 2e-4 on an axis from -1
    to 1 labelled "0"; such a pane gets a range around its value instead.
    """
    n = len(spec.panes)
    width, height = panel_size(spec)
    out: dict[str, Any] = {
        "title": spec.title,
        "showlegend": True,
        "xaxis": {"title": spec.xlabel, "anchor": _axis_ref(n - 1)},
        "margin": {"l": 70, "r": 30, "t": 50, "b": 50},
        "width": width,
        "height": height,
    }
    for i, (pane, domain) in enumerate(zip(spec.panes, pane_domains(n), strict=True)):
        axis = {"title": pane.ylabel, "domain": list(domain), "anchor": "x"}
        if flat and i in flat:
            axis.update(range=flat_range(flat[i]), exponentformat="e")
        out[_axis_key(i)] = axis
    return out


def flat_range(value: float) -> list[float]:
    """A y range with ``value`` in the middle and a tick of its own magnitude."""
    half = abs(value) * 0.5 or 1.0
    return [value - half, value + half]


def flat_panes(spec: PanelSpec, points: Points) -> dict[int, float]:
    """``{pane index: value}`` for the panes whose finite values are all one number."""
    values: dict[int, set[float]] = {}
    for name, (_, ys) in points.items():
        if name in spec.series:
            finite = {float(y) for y in ys if y is not None and math.isfinite(y)}
            values.setdefault(spec.pane_of(name), set()).update(finite)
    return {i: next(iter(v)) for i, v in values.items() if len(v) == 1}


def _json_number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "null"  # a gap: Plotly draws a break
    return repr(float(value))


def panel_body(
    env: str,
    spec: PanelSpec,
    points: Points,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> bytes:
    """The whole window as one ``/events`` message: one trace per series that has points.

    ``styles`` adds Plotly trace keys per series name (a comparison gives each
    run one colour and legend group across the panes).
    """
    columns = {
        name: (
            "[" + ",".join(_json_number(x) for x in xs) + "]",
            "[" + ",".join(_json_number(y) for y in ys) + "]",
        )
        for name, (xs, ys) in points.items()
        if len(xs)
    }
    return lines_body(env, spec, columns, styles, flat=flat_panes(spec, points))


def lines_body(
    env: str,
    spec: PanelSpec,
    columns: Mapping[str, tuple[str, str]],
    styles: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    mode: str = "lines+markers",
    flat: Mapping[int, float] | None = None,
) -> bytes:
    """The one builder of a line window's ``/events`` body, live and replayed alike.

    ``columns``: ``{series name: (xs, ys)}`` already encoded as JSON arrays (a long
    loss series is encoded once, by whoever holds it); series the spec does not
    name, or without points, are left out.
    """
    names = [name for name in spec.series if name in columns]
    width, height = panel_size(spec)
    head = {
        "eid": env,
        "win": spec.win,
        "layout": panel_layout(spec, flat),
        "opts": {
            "title": spec.title,
            "xlabel": spec.xlabel,
            "legend": names,
            "showlegend": True,
            "width": width,
            "height": height,
        },
    }
    traces = []
    for name in names:
        xs, ys = columns[name]
        traces.append(
            f'{{"x":{xs},"y":{ys},"name":{json.dumps(name)},"type":"scatter",'
            f'"mode":"{mode}","yaxis":"{_axis_ref(spec.pane_of(name))}","xaxis":"x"'
            + "".join(
                f",{json.dumps(k)}:{json.dumps(v)}" for k, v in (styles or {}).get(name, {}).items()
            )
            + "}"
        )
    return (json.dumps(head)[:-1] + ',"data":[' + ",".join(traces) + "]}").encode("utf-8")


def loss_spec(win: str, title: str, names: Sequence[str]) -> PanelSpec:
    """A loss window: one pane per loss, so G_L1 (~40) no longer flattens G_GAN (~2).

    Several runs (``<run>/<loss>`` names) share each loss's pane. The x axis is the
    fractional epoch the trainer logs.
    """
    panes: dict[str, list[str]] = {}
    for name in names:
        panes.setdefault(name.rpartition("/")[2], []).append(name)
    return PanelSpec(
        win, title, tuple(Pane(loss, tuple(members)) for loss, members in panes.items())
    )


# -- what the rows of the metric files look like as points ------------------------------------

VAL_COLUMNS = {"L1": "l1", "PSNR": "psnr", "SSIM": "ssim"}


def val_points(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list, list]]:
    """``val_metrics.json`` rows -> series of the ``val_metrics`` window."""
    return {
        name: ([r["epoch"] for r in rows], [r.get(key) for r in rows])
        for name, key in VAL_COLUMNS.items()
    }


def lr_points(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list, list]]:
    """``epoch_stats.json`` rows -> the ``lr`` window (lr used during each epoch)."""
    return {
        name: ([r["epoch"] for r in rows], [r.get(f"lr_{name}") for r in rows])
        for name in ("G", "D")
    }


def throughput_points(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list, list]]:
    """``epoch_stats.json`` rows -> the ``throughput`` window."""
    xs = [r["epoch"] for r in rows]
    return {
        "images/s": (xs, [r.get("images_per_s") for r in rows]),
        "s/epoch": (xs, [r.get("seconds") for r in rows]),
    }


# -- run_info ---------------------------------------------------------------------------------


def text_body(
    env: str, win: str, text: str, title: str | None = None, size: tuple[int, int] | None = None
) -> bytes:
    """A text (HTML) window's whole ``/events`` body: live text windows and replay's panes."""
    opts: dict[str, Any] = {"title": title} if title else {}
    if size is not None:
        opts["width"], opts["height"] = size
    msg = {"eid": env, "win": win, "data": [{"content": text, "type": "text"}], "opts": opts}
    return json.dumps(msg).encode("utf-8")


def image_body(
    env: str,
    win: str,
    src: str,
    title: str,
    size: tuple[int, int],
    *,
    caption: str | None = None,
    slider: bool = False,
) -> bytes:
    """An image window's body: the live grid, or one position of replay's example slider.

    ``slider``: an ``image_history`` entry (Visdom adds each to the window's slider,
    posted to ``update`` after the first); its window is 60 px taller for the slider.
    """
    opts: dict[str, Any] = {"title": title, "width": size[0], "height": size[1]}
    if slider:
        opts.update(height=size[1] + 60, show_slider=True)
    msg = {
        "eid": env,
        "win": win,
        "data": [
            {
                "content": {"src": src, "caption": caption},
                "type": "image_history" if slider else "image",
            }
        ],
        "opts": opts,
    }
    return json.dumps(msg).encode("utf-8")


def run_info_rows(info: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``run_info.json`` as (label, value) rows, the order the pane shows them."""
    rows = [("experiment", str(info.get("experiment_dir", "?")))]
    epoch, total = info.get("epoch", 0), info.get("total_epochs", "?")
    rows.append(("epoch", f"{epoch}/{total}"))
    rows.append(("elapsed (this run)", format_duration(info.get("elapsed_s"))))
    rows.append(("ETA", format_duration(info.get("eta_s"))))
    best = info.get("best")
    if isinstance(best, Mapping) and best.get("epoch") is not None:
        where = f", {info['best_checkpoint']}" if info.get("best_checkpoint") else ""
        rows.append(("best val L1", f"{best['l1']:.4f} at epoch {best['epoch']}{where}"))
    else:
        rows.append(("best val L1", "none yet"))
    rows.append(("device / precision", f"{info.get('device', '?')} / {info.get('precision', '?')}"))
    sizes = info.get("dataset") or {}
    split = sizes.get("val_split") or "none"
    rows.append(
        (
            "dataset",
            f"{sizes.get('train', '?')} train, {sizes.get('val', 0)} validated ({split} split)",
        )
    )
    params = info.get("parameters") or {}
    rows.append(("parameters", ", ".join(f"{k} {v:,}" for k, v in params.items()) or "?"))
    changes = info.get("config_changes") or {}
    listed = "<br>".join(
        f"{html.escape(k)} = {html.escape(json.dumps(v))}" for k, v in changes.items()
    )
    rows.append(("config vs defaults", listed or "all defaults"))
    return rows


def run_info_html(info: Mapping[str, Any]) -> str:
    """The ``run_info`` pane: one two-column table (config changes are already escaped)."""
    cells = []
    for label, value in run_info_rows(info):
        shown = value if label == "config vs defaults" else html.escape(value)
        cells.append(
            f"<tr><th style='text-align:left;padding-right:1em;vertical-align:top'>"
            f"{html.escape(label)}</th><td>{shown}</td></tr>"
        )
    return "<table style='font-size:13px'>" + "".join(cells) + "</table>"


def flat_changes(config: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys whose value differs from the defaults (keys the defaults lack included)."""
    out: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], base: Any, prefix: str) -> None:
        for key, value in node.items():
            ref = base.get(key) if isinstance(base, Mapping) else None
            if isinstance(value, Mapping):
                walk(value, ref, f"{prefix}{key}.")
            elif ref != value or not isinstance(base, Mapping) or key not in base:
                out[f"{prefix}{key}"] = value

    walk(config, defaults, "")
    return out
