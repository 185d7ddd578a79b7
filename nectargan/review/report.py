"""A static HTML report of one experiment, readable offline on any machine.

Layout of the output folder (default ``<experiment>/report``)::

    index.html              the page: status, timing, loss curves, validation, examples,
                            test metrics, config
    assets/loss_G.png       loss curves rendered with matplotlib (Agg, no display needed)
    assets/val_metrics.png  validation L1 / PSNR / SSIM per epoch (val_metrics.json)
    assets/epoch_stats.png  learning rates and throughput per epoch (epoch_stats.json)
    assets/examples/...     copies of the example triplets shown
    assets/test/...         copies of the test triplets shown
    .nectargan-report       marker: this folder may be rewritten by the next report

Images are files next to the page, referenced by relative paths, rather than
data: URIs: the page stays small and fast with hundreds of epochs, and the
folder can be moved or zipped as a whole. There is no script and no external
CSS, font or image, so nothing is fetched when the page is opened.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import numpy as np
from matplotlib.figure import Figure

from nectargan import experiment_layout as layout
from nectargan.errors import ExperimentUserError
from nectargan.review.experiment_reader import (
    ExampleEpoch,
    Experiment,
    LossSeries,
    TestResult,
    status_line,
    timing_lines,
)
from nectargan.review.replay import DEFAULT_MAX_IMAGE_EPOCHS, pick_epochs, tag_title
from nectargan.utils.numbers import is_number
from nectargan.visualizer.visdom.panels import (
    VAL_METRICS,
    lr_points,
    throughput_points,
    val_points,
)

REPORT_DIR = layout.REPORT_DIR
ASSETS = "assets"
MARKER = ".nectargan-report"
MAX_TEST_IMAGES = 12


class ReportError(ExperimentUserError):
    """The report cannot be written where asked; the message says why."""


@dataclass
class ReportResult:
    html: Path
    images: list[Path] = field(default_factory=list)  # every image the page references
    notes: list[str] = field(default_factory=list)


# -- smoothing and plots ----------------------------------------------------------------


def ema(values: np.ndarray, smooth: float) -> np.ndarray:
    """Debiased exponential moving average (as TensorBoard's slider); NaN gaps are skipped.

    Debiasing keeps the first points from being pulled towards 0.
    """
    if smooth <= 0:
        return values.astype(np.float64, copy=True)
    out = np.full(len(values), np.nan)
    last, count = 0.0, 0
    for i, v in enumerate(values.tolist()):
        if v != v:  # NaN: a gap stays a gap, the average carries over it
            continue
        last = last * smooth + (1.0 - smooth) * v
        count += 1
        out[i] = last / (1.0 - smooth**count)
    return out


def plot_losses(
    title: str,
    series: Sequence[LossSeries],
    path: Path,
    smooth: float = 0.0,
    log_scale: bool = False,
    labels: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
) -> list[str]:
    """Write one PNG of ``series`` (weighted, as graphed live); return caveats for the caption.

    ``labels`` and ``colors`` (default: the loss names, C0, C1, ...) let a
    comparison name each line by its run and keep a run's colour across plots.
    """
    fig = Figure(figsize=(10, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    notes = []
    for i, s in enumerate(series):
        color = colors[i] if colors else f"C{i % 10}"
        label = labels[i] if labels else s.name
        y = s.weighted
        if smooth > 0:
            ax.plot(s.epoch, y, color=color, alpha=0.25, linewidth=0.8)
            ax.plot(s.epoch, ema(y, smooth), color=color, linewidth=1.6, label=label)
        else:
            ax.plot(s.epoch, y, color=color, linewidth=1.2, label=label)
        if log_scale and np.any(y[np.isfinite(y)] <= 0):
            notes.append(f"{label}: values <= 0 not shown on the log scale")
        gaps = int(np.count_nonzero(~np.isfinite(y)))
        if gaps:
            notes.append(f"{label}: {gaps} non-finite value(s) shown as gaps")
    if log_scale:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_title(title)
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Loss (weighted)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    fig.savefig(path, format="png")
    return notes


# -- the page -----------------------------------------------------------------------------


def write_report(
    exp: Experiment,
    out_dir: str | Path | None = None,
    *,
    smooth: float = 0.0,
    log_scale: bool = False,
    max_image_epochs: int = DEFAULT_MAX_IMAGE_EPOCHS,
) -> ReportResult:
    """Write ``index.html`` and its images into ``out_dir``; return what was written."""
    if not 0.0 <= smooth < 1.0:
        raise ReportError(f"smooth must be in [0, 1) (0 = off, 0.9 = strong), got {smooth!r}")
    out = prepare_out_dir(Path(out_dir) if out_dir else exp.path / REPORT_DIR)
    result = ReportResult(html=out / "index.html")
    sections = [
        _overview(exp),
        _losses_section(exp, out, smooth, log_scale, result),
        _validation_section(exp, out, result),
        _examples_section(exp, out, max_image_epochs, result),
        _tests_section(exp, out, result),
        _config_section(exp),
    ]
    page = _page(exp, [s for s in sections if s])
    result.html.write_text(page, encoding="utf-8")
    return result


def prepare_out_dir(out: Path) -> Path:
    """Create ``out``, or reuse one an earlier report made; never clobber other folders."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ReportError(
            f"--out {str(out)!r} is a non-empty folder that no report wrote; "
            "choose an empty or new folder"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(out / ASSETS, ignore_errors=True)  # images of an earlier report
        (out / ASSETS).mkdir()
        (out / MARKER).write_text("written by `nectargan report`; safe to delete\n")
    except OSError as exc:
        raise ReportError(f"cannot write the report to {str(out)!r}: {exc.strerror}") from exc
    return out


def _overview(exp: Experiment) -> str:
    parts = [f"<p><b>{_e(status_line(exp))}</b><br><code>{_e(str(exp.path))}</code></p>"]
    parts.append(_list("Timing", timing_lines(exp)))
    if exp.problems:
        parts.append(_list("Skipped (unreadable or missing)", exp.problems, "warn"))
    return _section("Overview", "\n".join(parts))


def _losses_section(
    exp: Experiment, out: Path, smooth: float, log_scale: bool, result: ReportResult
) -> str:
    if not exp.n_records:
        return _section("Losses", "<p>No loss records (no loss log, or it is empty).</p>")
    how = [f"EMA smoothing {smooth:g} over the faint raw curve" if smooth else "unsmoothed"]
    how.append("log scale" if log_scale else "linear scale")
    parts = [f"<p>{_e(', '.join(how))}; {exp.n_records} records in all.</p>"]
    for tag in exp.tags():
        members = [s for s in exp.losses.values() if len(s) and tag in (s.tags or [""])]
        if not members:
            continue
        path = out / ASSETS / f"{layout.loss_window(tag)}.png"
        notes = plot_losses(tag_title(tag), members, path, smooth, log_scale)
        result.images.append(path)
        counts = ", ".join(f"{s.name}: {len(s)} points" for s in members)
        caption = "; ".join([counts, *notes])
        parts.append(_figure(out, path, tag_title(tag), caption))
    return _section("Losses", "\n".join(parts))


def plot_panes(
    title: str,
    panes: Sequence[tuple[str, dict[str, tuple[list, list]]]],
    path: Path,
    colors: Mapping[str, str] | None = None,
) -> None:
    """Stacked panes sharing the epoch axis, one y axis each (as the live panel windows).

    ``colors`` maps a series name to its colour (a comparison's run colours).
    """
    fig = Figure(figsize=(10, 2.2 * len(panes) + 0.6), dpi=100, layout="constrained")
    axes = fig.subplots(len(panes), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (ylabel, series) in zip(axes, panes, strict=True):
        for i, (name, (xs, ys)) in enumerate(series.items()):
            y = np.array([np.nan if v is None else v for v in ys], dtype=float)
            color = (colors or {}).get(name, f"C{i % 10}")
            ax.plot(xs, y, marker="o", markersize=3, color=color, label=name)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    axes[0].set_title(title)
    axes[-1].set_xlabel("Epoch")
    fig.savefig(path, format="png")


def _validation_section(exp: Experiment, out: Path, result: ReportResult) -> str:
    """Validation metrics per epoch, the best epoch, and lr/throughput per epoch."""
    if not exp.val_metrics and not exp.epoch_stats:
        return _section(
            "Validation",
            "<p>No validation recorded (val_metrics.json; visualizer.visdom.val_every 0, "
            "no val/ or test/ split, or a run from before validation existed).</p>",
        )
    parts = []
    rows = exp.val_metrics
    if rows:
        best = exp.val_best or {}
        split = exp.val_split or "?"
        images = rows[-1].get("images", "?")
        best_text = (
            f"best val L1 {best['l1']:.4f} at epoch {best['epoch']} (checkpoints/best.pt; "
            f"<code>nectargan test --experiment DIR --epoch best</code>)"
            if best
            else "no best epoch recorded"
        )
        parts.append(
            f"<p>{_e(split)} split, {_e(str(images))} image(s) per validation, "
            f"{len(rows)} validation(s); <b>{best_text}</b>.</p>"
        )
        path = out / ASSETS / "val_metrics.png"
        points = val_points(rows)
        panes = [(p.ylabel, {n: points[n] for n in p.series}) for p in VAL_METRICS.panes]
        plot_panes("Validation metrics", panes, path)
        result.images.append(path)
        parts.append(_figure(out, path, "Validation metrics", "L1, PSNR and SSIM per validation"))
        parts.append(_val_table(rows, best.get("epoch")))
    stats = exp.epoch_stats
    if stats:
        path = out / ASSETS / "epoch_stats.png"
        tp = throughput_points(stats)
        panes = [("learning rate", lr_points(stats))]
        panes += [(name, {name: tp[name]}) for name in ("images/s", "s/epoch")]
        plot_panes("Learning rate and throughput", panes, path)
        result.images.append(path)
        parts.append(_figure(out, path, "Learning rate and throughput", "per epoch"))
    return _section("Validation", "\n".join(parts))


def _val_table(rows: Sequence[dict], best_epoch: int | None) -> str:
    head = "<tr><th>epoch</th><th>L1</th><th>PSNR dB</th><th>SSIM</th><th>s</th></tr>"
    body = "".join(
        f"<tr{' class=best' if r['epoch'] == best_epoch else ''}><td>{r['epoch']}</td>"
        + "".join(f"<td>{_num(r.get(k))}</td>" for k in ("l1", "psnr", "ssim", "seconds"))
        + "</tr>"
        for r in rows
    )
    return f"<details><summary>Per validation ({len(rows)})</summary><table>{head}{body}</table></details>"


def _examples_section(exp: Experiment, out: Path, limit: int, result: ReportResult) -> str:
    if not exp.examples:
        return _section("Examples", "<p>No example images were saved.</p>")
    chosen = pick_epochs(exp.examples, limit)
    parts = ["<p>Each row: real_A | fake_B | real_B for a fixed validation item.</p>"]
    if len(chosen) < len(exp.examples):
        parts.append(
            f"<p>{len(chosen)} of {len(exp.examples)} epochs shown, evenly spread "
            "(--max-image-epochs 0 shows all).</p>"
        )
    for example in chosen:
        parts.append(_example_epoch(example, out, result))
    return _section("Examples per epoch", "\n".join(parts))


def _example_epoch(example: ExampleEpoch, out: Path, result: ReportResult) -> str:
    imgs = []
    for src in example.images:
        dest = _copy(src, out / ASSETS / "examples" / src.name, result)
        if dest is not None:
            imgs.append(_img(out, dest, f"epoch {example.epoch}: {src.name}"))
    return f'<div class="epoch"><h3>Epoch {example.epoch}</h3>{"".join(imgs)}</div>'


def _tests_section(exp: Experiment, out: Path, result: ReportResult) -> str:
    if not exp.tests:
        return ""
    return _section("Test metrics", "\n".join(_test_block(t, exp, out, result) for t in exp.tests))


def _test_block(test: TestResult, exp: Experiment, out: Path, result: ReportResult) -> str:
    rel = test.folder.relative_to(exp.path).as_posix()
    rep = test.report
    facts = [f"{k}: {rep[k]}" for k in ("split", "epoch", "n_images", "checkpoint") if k in rep]
    if rep.get("interrupted"):
        facts.append("checkpoint from an interrupted run")
    metrics = test.metrics
    head = "".join(f"<th>{_e(m)}</th>" for m in metrics)
    row = "".join(f"<td>{_num(v)}</td>" for v in metrics.values())
    parts = [f"<h3>{_e(rel)}</h3><p>{_e('; '.join(facts))}</p>"]
    if metrics:
        parts.append(f"<table><tr>{head}</tr><tr>{row}</tr></table>")
    if rep.get("value_range"):
        parts.append(f"<p class='small'>{_e(str(rep['value_range']))}</p>")
    parts.append(_per_image_table(rep.get("per_image") or [], list(metrics)))
    shown = test.images[:MAX_TEST_IMAGES]
    dest_dir = out / ASSETS / "test" / rel.replace("/", "_")
    imgs = [_copy(p, dest_dir / p.name, result) for p in shown]
    parts.append('<div class="test">' + "".join(_img(out, d, d.stem) for d in imgs if d) + "</div>")
    if len(test.images) > len(shown):
        parts.append(f"<p>{len(shown)} of {len(test.images)} test triplets shown.</p>")
    return "\n".join(parts)


def _per_image_table(rows: list, metrics: list[str]) -> str:
    if not rows or not metrics:
        return ""
    head = "<tr><th>image</th>" + "".join(f"<th>{_e(m)}</th>" for m in metrics) + "</tr>"
    body = "".join(
        "<tr><td>"
        + _e(str(r.get("image", "")))
        + "</td>"
        + "".join(f"<td>{_num(r.get(m))}</td>" for m in metrics)
        + "</tr>"
        for r in rows
        if isinstance(r, dict)
    )
    return (
        f"<details><summary>Per image ({len(rows)})</summary><table>{head}{body}</table></details>"
    )


def _config_section(exp: Experiment) -> str:
    if exp.config is None:
        return _section("Config", "<p>Unknown: no readable config.json.</p>")
    files = ", ".join(p.name for p in exp.config_files)
    text = json.dumps(exp.config, indent=2)
    return _section(
        "Effective config", f"<p>From {_e(files)} (the last one).</p><pre>{_e(text)}</pre>"
    )


# -- HTML helpers -----------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;
padding:0 1em;color:#222}
h1{margin-bottom:.2em}section{margin:2em 0}img{max-width:100%;image-rendering:pixelated;
margin:2px;border:1px solid #ddd}figure{margin:1em 0}figcaption{font-size:.9em;color:#555}
pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:.85em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;
text-align:right}.warn li{color:#a40}.small{font-size:.85em;color:#555}
.epoch img{height:160px}.test img{height:128px}tr.best td{font-weight:bold;background:#eef}
"""


def _page(exp: Experiment, sections: list[str]) -> str:
    return page(exp.name, "NectarGAN experiment report", sections)


def page(title: str, kind: str, sections: list[str], style: str = "") -> str:
    """The whole document: inline CSS only, so it opens offline."""
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        '<meta name="generator" content="nectargan report">'
        f"<title>{_e(title)} - NectarGAN report</title><style>{_STYLE}{style}</style></head><body>"
        f"<h1>{_e(title)}</h1><p class='small'>{_e(kind)}, made {made}</p>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>\n{body}\n</section>"


def _list(title: str, items: Sequence[str], cls: str = "") -> str:
    rows = "".join(f"<li>{_e(i)}</li>" for i in items)
    attr = f' class="{cls}"' if cls else ""
    return f"<b>{_e(title)}</b><ul{attr}>{rows}</ul>"


def _figure(out: Path, path: Path, alt: str, caption: str) -> str:
    return f"<figure>{_img(out, path, alt)}<figcaption>{_e(caption)}</figcaption></figure>"


def _img(out: Path, path: Path, alt: str) -> str:
    """An ``<img>`` with a relative, URL-safe path: the page works wherever the folder goes."""
    rel = path.relative_to(out).as_posix()
    return f'<img src="{html.escape(_url_path(rel))}" alt="{_e(alt)}">'


def _url_path(rel: str) -> str:
    return quote(rel, safe="/")


def _copy(src: Path, dest: Path, result: ReportResult) -> Path | None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    except OSError as exc:
        result.notes.append(f"could not copy {src}: {exc.strerror}")
        return None
    result.images.append(dest)
    return dest


def _num(value: object) -> str:
    if is_number(value):
        return f"{value:.4g}"
    return _e(str(value)) if value is not None else ""


def _e(text: str) -> str:
    return html.escape(text, quote=True)
