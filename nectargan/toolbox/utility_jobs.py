"""The Utilities page's work: ``nectargan export`` and ``nectargan infer --model`` as child processes.

Each job is the CLI command itself, started with an argument list (never a
shell) in a session of its own, its output going to ``output.log`` in the
job's folder under the Toolbox's state dir; the page follows that log live.
What the page shows of the result is read from what the command printed (the
export's self-check) or wrote (the images in the job's ``outputs/`` folder,
served by name only). Every value from the browser is checked here first, so
a bad one is a one-line message, never a traceback from the child.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nectargan.errors import UserError
from nectargan.toolbox.paths import PathRefused, confine

JOBS_DIR = "utility-jobs"
LOG_NAME = "output.log"
OUTPUTS = "outputs"
LOG_TAIL_LINES = 200
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_STATIC_SIDE = 8192
MAX_TILE = 8192
EXPORTED_LINE = re.compile(r"^exported (.+?) -> (.+) \((\w+)(?:, opset (\d+))?\)$", re.M)
MAX_DIFF_LINE = re.compile(r"^max abs difference vs torch: (\S+)$", re.M)
SELF_CHECK_LINE = re.compile(r"^self-check: (.+)$", re.M)
ERROR_LINE = re.compile(r"^(nectargan \w+: .+|\w*Error: .+)$", re.M)


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


def failure_line(log: str) -> str:
    """The command's own one-line error (its last), else its last line."""
    errors = ERROR_LINE.findall(log)
    if errors:
        return errors[-1]
    lines = [line for line in log.splitlines() if line.strip()]
    return lines[-1] if lines else "it printed nothing"


def output_images(folder: Path) -> list[str]:
    try:
        names = [p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    except OSError:
        return []
    return sorted(names)


# -- jobs ----------------------------------------------------------------------------------------


@dataclass
class UtilityJob:
    id: str
    kind: str  # export or infer
    label: str
    args: list[str]
    folder: Path
    proc: subprocess.Popen
    started: float = field(default_factory=time.time)
    exit_code: int | None = None
    ended: float | None = None
    stopped: bool = False

    @property
    def log_path(self) -> Path:
        return self.folder / LOG_NAME

    @property
    def outputs(self) -> Path:
        return self.folder / OUTPUTS

    def poll(self) -> None:
        if self.exit_code is None:
            self.exit_code = self.proc.poll()
            if self.exit_code is not None:
                self.ended = time.time()

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def state(self) -> str:
        if self.exit_code is None:
            return "running"
        if self.stopped:
            return "stopped"
        return "done" if self.exit_code == 0 else "failed"

    def snapshot(self) -> dict[str, Any]:
        """What the page shows: state, the log's tail, and the result once there is one."""
        self.poll()
        log = self.read_log()
        state = self.state()
        snap: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "command": "nectargan " + " ".join(self.args),
            "state": state,
            "pid": self.proc.pid,
            "exit_code": self.exit_code,
            "started": self.started,
            "ended": self.ended,
            "log": log.splitlines()[-LOG_TAIL_LINES:],
            "error": failure_line(log) if state == "failed" else "",
        }
        if self.kind == "export":
            snap["check"] = self_check(log)
        else:
            snap["outputs_dir"] = str(self.outputs)
            snap["images"] = output_images(self.outputs)
        return snap


class UtilityJobs:
    """The export and infer children of one Toolbox process (thread-safe)."""

    def __init__(self, state_dir: Path, python: str, cwd: Path) -> None:
        self.base = state_dir / JOBS_DIR
        self.python = python
        self.cwd = cwd
        self._jobs: dict[str, UtilityJob] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def new_folder(self, kind: str) -> tuple[str, Path]:
        job_id = f"{kind}-{os.getpid()}-{next(self._ids)}"
        return job_id, self.base / job_id  # made by start(): refused input leaves nothing

    def start(
        self, job_id: str, kind: str, label: str, args: list[str], folder: Path
    ) -> UtilityJob:
        command = [self.python, "-m", "nectargan", *args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / LOG_NAME, "ab") as log:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=env,
                start_new_session=True,  # Ctrl-C in the Toolbox's terminal does not reach it
            )
        job = UtilityJob(job_id, kind, label, args, folder, proc)
        with self._lock:
            self._jobs[job_id] = job
        return job

    def get(self, job_id: str) -> UtilityJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[UtilityJob]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.started, reverse=True)

    def stop(self, job: UtilityJob) -> None:
        """SIGTERM the job's whole session (the command and anything it started)."""
        job.poll()
        if job.exit_code is None:
            job.stopped = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.proc.pid, signal.SIGTERM)
