"""Replay finished runs into a Visdom env: full loss graphs, example triplets, a summary.

What is sent, per env:

* one line window per loss tag, built by the live dashboard's builder (``loss_G``
  "Generator Loss", ``loss_D`` "Discriminator Loss"; one pane per loss, x = the
  fractional epoch the trainer logs, y = the weighted loss the live graph shows). Unlike the
  live graph, every logged point is sent: nothing is downsampled.
* ``examples``: an image window with a slider, one position per epoch, each
  showing that epoch's ``real_A | fake_B | real_B`` triplets stacked.
* ``summary``: a text window with the status, timing, skipped pieces and config.
* ``val_metrics``, ``lr``, ``throughput`` and ``run_info`` (one run only): the
  live per-epoch windows, rebuilt from ``val_metrics.json``,
  ``epoch_stats.json`` and ``run_info.json`` by the same code the live
  dashboard uses (nectargan/visualizer/visdom/panels.py), so they look the same.
* several runs: ``val_metrics`` overlays every run's L1, PSNR and SSIM (series
  ``<run>/L1``..., one colour and legend group per run), and ``comparison``
  tabulates each run's best epoch, its metrics, epochs done, images/s and the
  config keys that differ between the runs (nectargan/review/compare.py).

Why one request per line window: Visdom's ``update``/append path deep-copies
and JSON-diffs the whole pane on every call, so appending in chunks gets
slower with each chunk; a single ``/events`` request that creates the window
with all its points is decoded once and costs the server nothing more. A
100k-point series is ~2 MB of JSON and replays in well under a second.
Several runs (``nectargan replay A B``) share the windows, one series per
run and loss, named ``<run>/<loss>``.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import numpy as np
from PIL import Image, ImageDraw

from nectargan import experiment_layout as layout
from nectargan.errors import ServerUnreachableError
from nectargan.review import compare
from nectargan.review.experiment_reader import (
    ExampleEpoch,
    Experiment,
    status_line,
    timing_lines,
)
from nectargan.visualizer.visdom import panels
from nectargan.visualizer.visdom.encoding import data_uri
from nectargan.visualizer.visdom.transport import Endpoint, Transport, TransportError

T = TypeVar("T")
TAG_TITLES = layout.LOSS_TITLES
EXAMPLES_WIN = layout.EXAMPLES_WINDOW
SUMMARY_WIN = layout.SUMMARY_WINDOW
TRIPLET_TITLE = layout.TRIPLET_TITLE
DEFAULT_MAX_IMAGE_EPOCHS = 50
DEFAULT_TIMEOUT = 60.0
MIN_IMAGE_WIDTH = 384
SUMMARY_SIZE = (520, 420)  # px; Visdom's default text pane is too small for a config
COMPARISON_SIZE = (680, 420)


@dataclass
class LineSpec:
    """One line window: its id, title and ``(trace name, xs, ys)`` series."""

    win: str
    title: str
    traces: list[tuple[str, np.ndarray, np.ndarray]]


@dataclass
class ReplayResult:
    """What a replay sent, for the command's report and for tests."""

    env: str
    url: str
    points: dict[str, dict[str, int]] = field(default_factory=dict)  # win -> trace -> points
    image_epochs: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was skipped or left out, and why
    requests: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0


# -- what to send (pure: no network) ----------------------------------------------------


def run_labels(experiments: Sequence[Experiment]) -> list[str]:
    """A unique series prefix per run: the directory name, with its parent if names clash."""
    names = [e.name for e in experiments]
    labels = []
    for exp in experiments:
        label = exp.name
        if names.count(label) > 1:
            label = f"{exp.path.parent.name}/{exp.name}"
        labels.append(label)
    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[i] = f"{label}#{seen[label]}"
    return labels


def default_env(experiments: Sequence[Experiment]) -> str:
    """The run's own name (``<name>_v<N>``), or ``compare_<a>_<b>...`` for several."""
    if len(experiments) == 1:
        return experiments[0].name
    return "compare_" + "_".join(e.name for e in experiments)[:120]


def tag_title(tag: str) -> str:
    return layout.loss_title(tag)


def loss_windows(experiments: Sequence[Experiment]) -> list[LineSpec]:
    """One window per tag over all runs; single runs name series by loss alone."""
    labels = run_labels(experiments)
    specs: dict[str, LineSpec] = {}
    for tag in _all_tags(experiments):
        specs[tag] = LineSpec(layout.loss_window(tag), tag_title(tag), [])
    for exp, label in zip(experiments, labels, strict=True):
        for series in exp.losses.values():
            if not len(series):
                continue
            name = series.name if len(experiments) == 1 else f"{label}/{series.name}"
            for tag in series.tags or [""]:
                specs[tag].traces.append((name, series.epoch, series.weighted))
    return [spec for spec in specs.values() if spec.traces]


def _all_tags(experiments: Sequence[Experiment]) -> list[str]:
    tags: dict[str, None] = {}
    for exp in experiments:
        tags.update(dict.fromkeys(exp.tags()))
    known = [t for t in TAG_TITLES if t in tags]  # the live dashboard's order: G, then D
    return known + [t for t in tags if t not in TAG_TITLES]


def line_body(env: str, spec: LineSpec) -> bytes:
    """A whole loss window as one ``/events`` message, built as the live dashboard builds it."""
    names = [name for name, _, _ in spec.traces]
    columns = {name: (_json_column(xs), _json_column(ys)) for name, xs, ys in spec.traces}
    return panels.lines_body(
        env, panels.loss_spec(spec.win, spec.title, names), columns, mode="lines"
    )


def _json_column(values: np.ndarray) -> str:
    """A float array as a JSON array; NaN (a gap) becomes ``null``, which Plotly draws as a break.

    Encoding the whole list at once and replacing the ``NaN`` token is much
    faster than a per-value check; the array holds only numbers, so no string
    can contain that token.
    """
    values = np.where(np.isfinite(values), values, np.nan)
    return json.dumps(values.tolist(), separators=(",", ":")).replace("NaN", "null")


def pick_epochs(examples: Sequence[T], limit: int) -> list[T]:
    """At most ``limit`` epochs, evenly spread, always with the first and last (0: all)."""
    if limit <= 0 or len(examples) <= limit:
        return list(examples)
    if limit == 1:
        return [examples[-1]]
    step = (len(examples) - 1) / (limit - 1)
    return [examples[round(i * step)] for i in range(limit)]


def stack_triplets(paths: Sequence[Path]) -> Image.Image:
    """An epoch's triplet PNGs one below the other, as rows of the live image grid."""
    images = [_rgb(Image.open(p)) for p in paths]
    width = max(im.width for im in images)
    canvas = Image.new("RGB", (width, sum(im.height for im in images)), "white")
    y = 0
    for im in images:
        canvas.paste(im, (0, y))
        y += im.height
    return canvas


def _readable_size(image: Image.Image) -> Image.Image:
    """Small training crops (32-64 px) are upscaled by a whole factor, pixels kept sharp."""
    factor = min(8, max(1, MIN_IMAGE_WIDTH // max(1, image.width)))
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def _rgb(image: Image.Image) -> Image.Image:
    image.load()
    return image if image.mode == "RGB" else image.convert("RGB")


def image_bodies(
    env: str, epochs: Sequence[ExampleEpoch], notes: list[str], every_epoch: bool = True
) -> Iterator[tuple[int, str, bytes]]:
    """``(epoch, endpoint, body)``: the slider window, a card first, then one image per epoch.

    Visdom's slider shows its 0-based position ("Selected: 7"); the card at
    position 0 makes position N the N-th epoch, so it agrees with the caption
    ("epoch 7") whenever every epoch is shown. A generator, so only one encoded
    epoch is in memory at a time; an epoch whose PNGs cannot be read is left out
    and noted.
    """
    created = False
    for example in epochs:
        try:
            image = _readable_size(stack_triplets(example.images))
        except (OSError, ValueError) as exc:
            notes.append(f"examples of epoch {example.epoch}: unreadable image ({exc}), skipped")
            continue
        if not created:
            card = slider_card(image.size, every_epoch)
            yield 0, "events", _image_message(env, card, CARD_CAPTION, image.size)
            created = True
        caption = f"epoch {example.epoch}"
        yield example.epoch, "update", _image_message(env, image, caption, image.size)


CARD_CAPTION = "move the slider: position N shows epoch N"
THINNED_CARD = "evenly spread epochs: each caption names its epoch"


def slider_card(size: tuple[int, int], every_epoch: bool) -> Image.Image:
    """Position 0 of the slider: a plain card saying how positions map to epochs."""
    card = Image.new("RGB", size, (245, 245, 245))
    text = CARD_CAPTION if every_epoch else THINNED_CARD
    ImageDraw.Draw(card).text((10, size[1] // 2 - 6), text, fill=(60, 60, 60))
    return card


def _image_message(env: str, image: Image.Image, caption: str, size: tuple[int, int]) -> bytes:
    src = data_uri(np.asarray(_rgb(image)))
    title = f"{TRIPLET_TITLE} per epoch"
    return panels.image_body(env, EXAMPLES_WIN, src, title, size, caption=caption, slider=True)


def summary_html(experiments: Sequence[Experiment], notes: Sequence[str]) -> str:
    """The text window: per run its status, timing, skipped pieces and effective config."""
    parts = []
    labels = run_labels(experiments)
    for exp, label in zip(experiments, labels, strict=True):
        parts.append(f"<h4>{html.escape(label)}</h4>")
        parts.append(f"<p>{html.escape(str(exp.path))}<br>{html.escape(status_line(exp))}</p>")
        parts.append(_html_list("Timing", timing_lines(exp)))
        if exp.problems:
            parts.append(_html_list("Skipped", exp.problems))
        config = json.dumps(exp.config, indent=2) if exp.config else "unknown (no config.json)"
        opened = " open" if len(experiments) == 1 else ""
        parts.append(
            f"<details{opened}><summary>Effective config</summary>"
            f"<pre>{html.escape(config)}</pre></details>"
        )
    if notes:
        parts.append(_html_list("Left out of the replay", notes))
    return "\n".join(parts)


def _html_list(title: str, items: Sequence[str]) -> str:
    rows = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    return f"<b>{html.escape(title)}</b><ul>{rows}</ul>"


def text_body(env: str, text: str, title: str) -> bytes:
    """The summary pane's message (the text-window body the live dashboard also posts)."""
    return panels.text_body(env, SUMMARY_WIN, text, title, SUMMARY_SIZE)


# -- sending ----------------------------------------------------------------------------


def replay(
    experiments: Sequence[Experiment],
    env: str | None = None,
    server: str = "http://localhost",
    port: int = 8097,
    *,
    clear: bool = False,
    max_image_epochs: int = DEFAULT_MAX_IMAGE_EPOCHS,
    timeout: float = DEFAULT_TIMEOUT,
) -> ReplayResult:
    """Send ``experiments`` to ``env`` on a Visdom server; raise ConnectionError if none answers.

    Examples are replayed for a single run only (a comparison is about losses).
    """
    if not experiments:
        raise ValueError("replay needs at least one experiment directory")
    compare.check_distinct(experiments)
    env = env or default_env(experiments)
    endpoint = Endpoint.parse(server, port)
    sender = Transport(endpoint, (min(5.0, timeout), timeout))  # the live dashboard's sender
    result = ReplayResult(env=env, url=f"{endpoint.url}/env/{quote(env, safe='')}")
    started = time.perf_counter()
    try:
        _open_env(sender, env, clear)
        _send_losses(sender, env, experiments, result)
        if len(experiments) == 1:
            _send_panels(sender, env, experiments[0], result)
            _send_examples(sender, env, experiments[0], max_image_epochs, result)
        else:
            _send_comparison(sender, env, experiments, result)
        title = "Run summary" if len(experiments) == 1 else "Runs compared"
        sender.post("events", text_body(env, summary_html(experiments, result.notes), title))
        sender.post("save", {"data": [env]})
    except TransportError as exc:
        raise ServerUnreachableError(
            f"replay to {sender.endpoint.url} (env {env!r}) failed: {exc}. "
            f"Is a Visdom server running there? Start one with `nectargan visdom start --port {port}`."
        ) from exc
    finally:
        sender.close()
    result.requests, result.bytes_sent = sender.requests, sender.bytes_sent
    result.seconds = time.perf_counter() - started
    return result


def _open_env(sender: Transport, env: str, clear: bool) -> None:
    sender.post(f"env/{quote(env, safe='')}", {"eid": env})
    if clear:
        sender.post("close", {"eid": env, "win": None})


def _send_losses(
    sender: Transport, env: str, experiments: Sequence[Experiment], result: ReplayResult
) -> None:
    specs = loss_windows(experiments)
    for spec in specs:
        sender.post("events", line_body(env, spec))
        result.points[spec.win] = {name: len(xs) for name, xs, _ in spec.traces}
    for exp, label in zip(experiments, run_labels(experiments), strict=True):
        if not exp.n_records:
            result.notes.append(f"{label}: no loss records to graph")


def _send_panels(sender: Transport, env: str, exp: Experiment, result: ReplayResult) -> None:
    """The live dashboard's per-epoch windows, from the run's files."""
    windows = (
        (panels.VAL_METRICS, panels.val_points(exp.val_metrics), "val_metrics.json"),
        (panels.LR, panels.lr_points(exp.epoch_stats), "epoch_stats.json"),
        (panels.THROUGHPUT, panels.throughput_points(exp.epoch_stats), "epoch_stats.json"),
    )
    for spec, points, source in windows:
        if not any(len(xs) for xs, _ in points.values()):
            result.notes.append(f"{spec.win}: nothing recorded ({source})")
            continue
        sender.post("events", panels.panel_body(env, spec, points))
        result.points[spec.win] = {name: len(xs) for name, (xs, _) in points.items()}
    if exp.run_info:
        text = panels.run_info_html(exp.run_info)
        body = panels.text_body(
            env, panels.RUN_INFO, text, panels.RUN_INFO_TITLE, panels.RUN_INFO_SIZE
        )
        sender.post("events", body)


def _send_examples(
    sender: Transport, env: str, exp: Experiment, limit: int, result: ReplayResult
) -> None:
    chosen = pick_epochs(exp.examples, limit)
    if not exp.examples:
        result.notes.append(f"{exp.name}: no example images (examples/epoch_NNNN_K.png)")
        return
    if len(chosen) < len(exp.examples):
        result.notes.append(
            f"examples: {len(chosen)} of {len(exp.examples)} epochs shown, evenly spread "
            "(--max-image-epochs 0 shows all)"
        )
    every_epoch = len(chosen) == len(exp.examples) and [e.epoch for e in chosen] == list(
        range(1, len(chosen) + 1)
    )
    for epoch, endpoint, body in image_bodies(env, chosen, result.notes, every_epoch):
        sender.post(endpoint, body)
        if epoch:  # 0: the card
            result.image_epochs.append(epoch)


# -- several runs -----------------------------------------------------------------------------


def _send_comparison(
    sender: Transport, env: str, experiments: Sequence[Experiment], result: ReplayResult
) -> None:
    """Every run's validation curves in one window, and the comparison table pane."""
    summaries = compare.summarize(experiments, run_labels(experiments))
    spec, points, styles = val_comparison(summaries)
    result.notes.extend(compare.missing_validation(summaries))
    if points:
        sender.post("events", panels.panel_body(env, spec, points, styles))
        result.points[spec.win] = {name: len(xs) for name, (xs, _) in points.items()}
    else:
        result.notes.append(f"{spec.win}: no run recorded validation (val_metrics.json)")
    text = comparison_html(summaries, compare.config_differences(experiments))
    title = "Best epochs and config differences"
    body = panels.text_body(env, layout.COMPARISON_WINDOW, text, title, COMPARISON_SIZE)
    sender.post("events", body)


def val_comparison(
    summaries: Sequence[compare.RunSummary],
) -> tuple[panels.PanelSpec, dict[str, tuple[list, list]], dict[str, dict[str, Any]]]:
    """The ``val_metrics`` window over runs: spec, ``<run>/<metric>`` points, per-run styles."""
    overlay = compare.val_overlay(summaries)
    panes, points, styles = [], {}, {}
    for pane, series in overlay:
        metric = pane.series[0]
        names = []
        for i, xy in series.items():
            label = summaries[i].label
            name = f"{label}/{metric}"
            color = compare.RUN_COLORS[i % len(compare.RUN_COLORS)]
            points[name] = xy
            styles[name] = {
                "legendgroup": label,
                "line": {"color": color},
                "marker": {"color": color},
            }
            names.append(name)
        panes.append(panels.Pane(pane.ylabel, tuple(names)))
    spec = panels.PanelSpec(panels.VAL_METRICS.win, panels.VAL_METRICS.title, tuple(panes))
    return spec, points, styles


_CELL = "style='border:1px solid #ccc;padding:2px 6px;text-align:right'"


def comparison_html(
    summaries: Sequence[compare.RunSummary], differences: Sequence[tuple[str, list[str]]]
) -> str:
    """The ``comparison`` pane: one row per run, then the config keys that differ."""
    best = compare.best_runs(summaries)
    head = ["run", "epochs", "best epoch", "val L1", "PSNR dB", "SSIM", "images/s"]
    rows = []
    for i, s in enumerate(summaries):
        cells = [
            html.escape(s.label),
            html.escape(s.epochs_text),
            str(s.best["epoch"]) if s.best else "-",
            *(
                _bold(compare.fmt(s.metric(k)), i in best.get(k, ()))
                for k in ("l1", "psnr", "ssim")
            ),
            compare.fmt(s.images_per_s, 3),
        ]
        rows.append(cells)
    parts = ["<b>Best validation epoch per run</b> (bold: best of the runs)", _table(head, rows)]
    notes = compare.missing_validation(summaries)
    if notes:
        parts.append(_html_list("No validation", notes))
    parts.append(_differences_html([s.label for s in summaries], differences))
    return "\n".join(parts)


def _differences_html(labels: Sequence[str], differences: Sequence[tuple[str, list[str]]]) -> str:
    if not differences:
        return "<p><b>Config</b>: no key differs between the runs.</p>"
    rows = [[html.escape(key), *map(html.escape, values)] for key, values in differences]
    title = f"<b>Config keys that differ</b> ({len(differences)}; all others are equal)"
    return title + _table(["key", *map(html.escape, labels)], rows)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A small bordered table; cells are already escaped."""
    th = "".join(f"<th {_CELL}>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td {_CELL}>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table style='border-collapse:collapse;font-size:13px'><tr>{th}</tr>{body}</table>"


def _bold(text: str, bold: bool) -> str:
    return f"<b>{text}</b>" if bold else text
