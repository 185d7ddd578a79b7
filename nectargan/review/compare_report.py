"""``nectargan report A B ... --output DIR``: one offline page comparing several runs.

Layout of the output folder::

    index.html                   the comparison: table, curves, config differences, examples
    assets/loss_<name>.png       one plot per loss, one line per run
    assets/val_metrics.png       L1 / PSNR / SSIM per validation, one line per run
    assets/examples/<run>/...    copies of each run's latest example triplets
    runs/<run>/index.html        the single-run report of each run (linked from the table)
    .nectargan-report            marker: this folder may be rewritten by the next report

Self-contained like the single-run page (nectargan/review/report.py, whose
HTML helpers and plots it reuses): every image and link is a relative path
inside the folder, and there is no script or external resource.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from nectargan.review import compare
from nectargan.review.compare import RunSummary
from nectargan.review.experiment_reader import Experiment
from nectargan.review.replay import DEFAULT_MAX_IMAGE_EPOCHS, run_labels
from nectargan.review.report import (
    ASSETS,
    ReportError,
    ReportResult,
    _copy,
    _e,
    _figure,
    _img,
    _list,
    _section,
    _url_path,
    page,
    plot_losses,
    plot_panes,
    prepare_out_dir,
    write_report,
)

RUNS_DIR = "runs"
_STYLE = (
    ".runs td:first-child,.diff td{text-align:left}.side img{height:120px}"
    ".side td{vertical-align:top;text-align:center}"
)


def write_comparison(
    experiments: Sequence[Experiment],
    out_dir: str | Path,
    *,
    smooth: float = 0.0,
    log_scale: bool = False,
    max_image_epochs: int = DEFAULT_MAX_IMAGE_EPOCHS,
) -> ReportResult:
    """Write the comparison page and a single-run report per run into ``out_dir``."""
    if len(experiments) < 2:
        raise ReportError(f"a comparison needs at least 2 runs, got {len(experiments)}")
    if not 0.0 <= smooth < 1.0:
        raise ReportError(f"smooth must be in [0, 1) (0 = off, 0.9 = strong), got {smooth!r}")
    compare.check_distinct(experiments)
    out = prepare_out_dir(Path(out_dir))
    shutil.rmtree(out / RUNS_DIR, ignore_errors=True)  # run reports of an earlier comparison
    result = ReportResult(html=out / "index.html")
    summaries = compare.summarize(experiments, run_labels(experiments))
    folders = run_folders(summaries)
    links = [
        _run_report(s, out / RUNS_DIR / folder, smooth, log_scale, max_image_epochs, result)
        for s, folder in zip(summaries, folders, strict=True)
    ]
    sections = [
        _runs_section(summaries, out, links),
        _losses_section(summaries, out, smooth, log_scale, result),
        _validation_section(summaries, out, result),
        _config_section(summaries),
        _examples_section(summaries, out, folders, result),
    ]
    title = f"Comparing {len(summaries)} runs"
    result.html.write_text(page(title, "NectarGAN comparison report", sections, _STYLE), "utf-8")
    return result


def run_folders(summaries: Sequence[RunSummary]) -> list[str]:
    """A distinct, URL- and filesystem-safe folder name per run, from its label."""
    names: list[str] = []
    for s in summaries:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", s.label).strip("._") or "run"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


def _run_report(
    s: RunSummary, folder: Path, smooth: float, log_scale: bool, limit: int, result: ReportResult
) -> Path | str:
    """The run's own report (its path), or why it could not be written."""
    try:
        written = write_report(
            s.exp, folder, smooth=smooth, log_scale=log_scale, max_image_epochs=limit
        )
    except (ReportError, OSError) as exc:
        reason = f"no single-run report: {exc}"
        result.notes.append(f"{s.label}: {reason}")
        return reason
    result.images.extend(written.images)
    result.notes.extend(f"{s.label}: {note}" for note in written.notes)
    return written.html


# -- sections ---------------------------------------------------------------------------------


def _runs_section(summaries: Sequence[RunSummary], out: Path, links: list[Path | str]) -> str:
    """The table a choice starts from: best epoch and metrics, final losses, speed."""
    losses = compare.loss_names(summaries)
    best = compare.best_runs(summaries)
    head = ["run", "epochs", "best epoch", "best val L1", "PSNR dB", "SSIM"]
    head += [f"final {_e(name)}" for name in losses] + ["s/epoch"]
    rows = []
    for i, s in enumerate(summaries):
        metrics = [
            _bold(compare.fmt(s.metric(k)), i in best.get(k, ())) for k in ("l1", "psnr", "ssim")
        ]
        finals = [compare.fmt(s.final_losses.get(name)) for name in losses]
        rows.append(
            [_run_cell(s, out, links[i]), _e(s.epochs_text), _best_epoch(s), *metrics, *finals]
            + [compare.fmt(s.seconds_per_epoch, 3)]
        )
    parts = [
        "<p>Best epoch: the one <code>checkpoints/best.pt</code> holds (lowest val L1); "
        "bold: the best of the runs. Final losses: mean weighted value over the last epoch "
        "logged. Each run's name links to its own report.</p>",
        _table(head, rows, "runs"),
    ]
    notes = compare.missing_validation(summaries)
    notes += [f"{s.label}: {p}" for s in summaries for p in s.exp.problems]
    notes += [
        f"{s.label}: {why}" for s, why in zip(summaries, links, strict=True) if isinstance(why, str)
    ]
    if notes:
        parts.append(_list("Notes (missing or unreadable pieces)", notes, "warn"))
    return _section("Runs", "\n".join(parts))


def _run_cell(s: RunSummary, out: Path, link: Path | str) -> str:
    path = f"<br><span class='small'>{_e(str(s.exp.path))}</span>"
    if isinstance(link, str):
        return f"{_e(s.label)} <span class='small'>({_e(link)})</span>{path}"
    href = _url_path(link.relative_to(out).as_posix())
    return f'<a href="{_e(href)}">{_e(s.label)}</a>{path}'


def _best_epoch(s: RunSummary) -> str:
    return str(s.best["epoch"]) if s.best else "-"


def _losses_section(
    summaries: Sequence[RunSummary], out: Path, smooth: float, log_scale: bool, result: ReportResult
) -> str:
    """One plot per loss, one line per run (a run keeps its colour in every plot)."""
    parts = []
    for name in compare.loss_names(summaries):
        runs = [(i, s) for i, s in enumerate(summaries) if len(s.exp.losses.get(name, ()))]
        if not runs:
            continue
        path = out / ASSETS / f"loss_{_safe(name)}.png"
        series = [s.exp.losses[name] for _, s in runs]
        labels = [s.label for _, s in runs]
        notes = plot_losses(
            name,
            series,
            path,
            smooth,
            log_scale,
            labels=labels,
            colors=[_color(i) for i, _ in runs],
        )
        result.images.append(path)
        counts = ", ".join(f"{s.label}: {len(s.exp.losses[name])} points" for _, s in runs)
        parts.append(_figure(out, path, f"{name} per run", "; ".join([counts, *notes])))
    if not parts:
        return _section("Losses", "<p>No run logged losses.</p>")
    how = f"EMA smoothing {smooth:g}" if smooth else "unsmoothed"
    scale = "log scale" if log_scale else "linear scale"
    return _section("Losses", f"<p>Weighted losses, {how}, {scale}.</p>" + "\n".join(parts))


def _validation_section(summaries: Sequence[RunSummary], out: Path, result: ReportResult) -> str:
    overlay = compare.val_overlay(summaries)
    if not any(series for _, series in overlay):
        return _section("Validation", "<p>No run recorded validation (val_metrics.json).</p>")
    panes = [
        (pane.ylabel, {summaries[i].label: xy for i, xy in series.items()})
        for pane, series in overlay
    ]
    colors = {s.label: _color(i) for i, s in enumerate(summaries)}
    path = out / ASSETS / "val_metrics.png"
    plot_panes("Validation metrics", panes, path, colors)
    result.images.append(path)
    caption = "L1, PSNR and SSIM per validation, one line per run"
    return _section("Validation", _figure(out, path, "Validation metrics per run", caption))


def _config_section(summaries: Sequence[RunSummary]) -> str:
    differences = compare.config_differences([s.exp for s in summaries])
    if not differences:
        return _section("Config differences", "<p>No config key differs between the runs.</p>")
    rows = [[_e(key), *(f"<code>{_e(v)}</code>" for v in values)] for key, values in differences]
    text = f"<p>{len(differences)} key(s) differ; every other key is the same in all runs.</p>"
    head = ["key", *(_e(s.label) for s in summaries)]
    return _section("Config differences", text + _table(head, rows, "diff"))


def _examples_section(
    summaries: Sequence[RunSummary], out: Path, folders: list[str], result: ReportResult
) -> str:
    """Each run's latest example triplets side by side, row k = the same validation item."""
    latest = [s.exp.examples[-1] if s.exp.examples else None for s in summaries]
    if not any(latest):
        return _section("Latest examples", "<p>No run saved example images.</p>")
    head = [
        f"{_e(s.label)}<br>epoch {ex.epoch}" if ex else f"{_e(s.label)}<br>no examples"
        for s, ex in zip(summaries, latest, strict=True)
    ]
    columns = []
    for ex, folder in zip(latest, folders, strict=True):
        cells = []
        for src in ex.images if ex else []:
            dest = _copy(src, out / ASSETS / "examples" / folder / src.name, result)
            cells.append(_img(out, dest, f"{folder}: {src.name}") if dest else "unreadable")
        columns.append(cells)
    rows = [
        [col[k] if k < len(col) else "" for col in columns] for k in range(max(map(len, columns)))
    ]
    text = "<p>Each image: real_A | fake_B | real_B; a row shows the same validation item.</p>"
    return _section("Latest examples", text + _table(head, rows, "side"))


# -- helpers ----------------------------------------------------------------------------------


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str) -> str:
    """Head and body cells are HTML already (escaped by the caller)."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><tr>{th}</tr>{body}</table>'


def _bold(text: str, bold: bool) -> str:
    return f"<b>{text}</b>" if bold else text


def _color(i: int) -> str:
    return compare.RUN_COLORS[i % len(compare.RUN_COLORS)]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)
