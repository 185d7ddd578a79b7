"""The Utilities page's work: ``nectargan export`` and ``nectargan infer --model`` as child processes.

Each job is the CLI command itself, a child job of
:mod:`nectargan.toolbox.child_jobs` (its own session, ``output.log`` and a
record in the job's folder, so a restarted Toolbox still lists it); the page
follows that log live.
What the page shows of the result is read from what the command printed (the
export's self-check) or wrote (the images in the job's ``outputs/`` folder,
served by name only). Every value from the browser is checked here first, so
a bad one is a one-line message, never a traceback from the child.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nectargan.errors import UserError
from nectargan.toolbox.child_jobs import ChildJob
from nectargan.toolbox.paths import PathRefused, confine

LOG_TAIL_LINES = 200
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_STATIC_SIDE = 8192
MAX_TILE = 8192
EXPORTED_LINE = re.compile(r"^exported (.+?) -> (.+) \((\w+)(?:, opset (\d+))?\)$", re.M)
MAX_DIFF_LINE = re.compile(r"^max abs difference vs torch: (\S+)$", re.M)
SELF_CHECK_LINE = re.compile(r"^self-check: (.+)$", re.M)


class BadUtilityInput(UserError):
    """A form value the Utilities page cannot use; the message names it and what is expected."""


def opset_range() -> tuple[int, int]:
    """The opsets this torch can export (its own bounds, so the page never offers more)."""
    try:
        from torch.onnx import _constants

        return int(_constants.ONNX_MIN_OPSET), int(_constants.ONNX_MAX_OPSET)
    except (ImportError, AttributeError):  # a torch without them: let the exporter judge
        return 7, 99


def epoch_arg(raw: Any) -> str:
    """``best``, ``latest`` or a number of completed epochs, as ``--epoch`` takes it."""
    text = str(raw if raw is not None else "latest").strip().lower()
    if text in ("best", "latest") or (text.isdigit() and int(text) >= 1):
        return text
    raise BadUtilityInput(f"epoch {raw!r}: expected best, latest or a number of epochs (1 or more)")


def opset_arg(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    low, high = opset_range()
    text = str(raw).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadUtilityInput(f"opset {raw!r}: expected a whole number {low}-{high}, or empty")
    return int(text)


def static_arg(raw: Any) -> tuple[int, int] | None:
    """``None`` (dynamic axes) or ``[H, W]`` in pixels."""
    if raw in (None, "", []):
        return None
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) != 2:
        raise BadUtilityInput(f"static size {raw!r}: expected height and width in pixels")
    sides = []
    for side in raw:
        text = str(side).strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_STATIC_SIDE:
            raise BadUtilityInput(f"static size {side!r}: expected 1-{MAX_STATIC_SIDE} pixels")
        sides.append(int(text))
    return sides[0], sides[1]


def tile_arg(raw: Any) -> str:
    text = str(raw if raw not in (None, "") else "auto").strip().lower()
    if text == "auto" or (text.isdigit() and int(text) <= MAX_TILE):
        return text
    raise BadUtilityInput(f"tile {raw!r}: expected auto, 0 (never) or a tile side in pixels")


def export_args(run_dir: Path, body: Mapping[str, Any]) -> list[str]:
    """``export`` arguments for the page's form (run already found and confined)."""
    fmt = body.get("format", "onnx")
    if fmt not in ("onnx", "torchscript"):
        raise BadUtilityInput(f"format {fmt!r}: expected onnx or torchscript")
    args = ["export", "--experiment", str(run_dir), "--epoch", epoch_arg(body.get("epoch"))]
    args += ["--format", fmt]
    opset = opset_arg(body.get("opset"))
    if opset is not None:
        if fmt != "onnx":
            raise BadUtilityInput("opset: only for ONNX; leave it empty for TorchScript")
        args += ["--opset", str(opset)]
    static = static_arg(body.get("static"))
    if static is not None:
        args += ["--static", str(static[0]), str(static[1])]
    if body.get("overwrite"):
        args.append("--overwrite")
    return args


def model_arg(raw: Any, roots: Sequence[Path]) -> Path:
    """An existing ``.onnx`` file inside the roots."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadUtilityInput("model: expected an .onnx file inside the Toolbox's roots")
    path = confine(raw, roots)
    if path.suffix.lower() != ".onnx" or not path.is_file():
        raise BadUtilityInput(f"model {raw!r}: expected an existing .onnx file")
    return path


def folder_arg(raw: Any, roots: Sequence[Path]) -> Path:
    """An existing folder of images inside the roots (``..`` refused outright)."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadUtilityInput("folder: expected a folder of images inside the Toolbox's roots")
    if ".." in Path(raw).parts:
        raise PathRefused(f"folder {raw!r}: '..' is not allowed; name the folder itself")
    path = confine(raw, roots)
    if not path.is_dir():
        raise BadUtilityInput(f"folder {raw!r}: expected an existing folder of images")
    return path


def infer_args(body: Mapping[str, Any], roots: Sequence[Path], out: Path) -> list[str]:
    model = model_arg(body.get("model"), roots)
    folder = folder_arg(body.get("folder"), roots)
    args = ["infer", "--model", str(model), "--output", str(out), "--side-by-side"]
    args += ["--tile", tile_arg(body.get("tile"))]
    if body.get("paired"):
        args.append("--paired")
    return [*args, str(folder)]


def exported_models(run_dirs: Sequence[tuple[str, Path]]) -> list[dict[str, str]]:
    """The ``.onnx`` files in each run's ``export/`` folder, newest first."""
    found = []
    for run_id, folder in run_dirs:
        for path in (folder / "export").glob("*.onnx"):
            try:
                found.append((path.stat().st_mtime, run_id, path))
            except OSError:
                continue
    found.sort(key=lambda item: item[0], reverse=True)
    return [{"run": run_id, "name": p.name, "path": str(p)} for _, run_id, p in found]


# -- reading what a job printed and wrote ------------------------------------------------------


def self_check(log: str) -> dict[str, Any] | None:
    """The export's report: file written, format, opset, max difference from torch."""
    exported = EXPORTED_LINE.search(log)
    diff = MAX_DIFF_LINE.search(log)
    if exported is None or diff is None:
        return None
    return {
        "checkpoint": exported.group(1),
        "path": exported.group(2),
        "format": exported.group(3),
        "opset": int(exported.group(4)) if exported.group(4) else None,
        "max_abs_diff": float(diff.group(1)),
        "checked": SELF_CHECK_LINE.findall(log),
    }


def output_images(folder: Path) -> list[str]:
    try:
        names = [p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    except OSError:
        return []
    return sorted(names)


# -- what the page shows of a job --------------------------------------------------------------


def snapshot(job: ChildJob) -> dict[str, Any]:
    """State, the log's tail, and the result once there is one (the self-check, the images)."""
    log = job.read_log()
    snap = {**job.summary(), "log": log.splitlines()[-LOG_TAIL_LINES:]}
    if job.kind == "export":
        snap["check"] = self_check(log)
    else:
        snap["outputs_dir"] = str(job.outputs)
        snap["images"] = output_images(job.outputs)
    return snap
