"""Start, stop and resume ``nectargan train`` as child processes that outlive the Toolbox.

Each run is started with an argument list (never a shell) in a session of its
own: Ctrl-C in the Toolbox's terminal does not reach it, and stopping the
Toolbox leaves it training. Its output goes to ``train.log`` in its
experiment folder. A new run's folder is made by the run itself (the next
free ``<name>_v<N>``), so its output starts in ``<output>/.toolbox-logs/``
and is renamed into the folder once the run names it: a rename on one file
system keeps the run's open file, so nothing is lost or copied.

Stop sends SIGTERM (the run writes ``interrupted.pt``, as after Ctrl-C) to
the process holding the experiment's lock: to its whole process group when
it leads its own session (a run we or a launcher started), else to that
process alone (a run started in someone's shell pipeline).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nectargan import experiment_layout as layout
from nectargan.errors import UserError
from nectargan.runs.status import now_iso
from nectargan.toolbox.children import (
    process_alive,
    process_start_time,
    signal_session,
    spawn,
)
from nectargan.toolbox.paths import PathRefused, confine
from nectargan.toolbox.runs_index import lock_holder
from nectargan.utils.atomic import atomic_write_text

if TYPE_CHECKING:
    from nectargan.toolbox.context import Toolbox

PENDING_LOG_DIR = ".toolbox-logs"
EXPERIMENT_LINE = re.compile(r"^experiment: (.+?)(?: \(resuming after epoch \d+\))?$", re.M)
SNAPSHOT_DIR = "snapshots"


class LaunchRefused(UserError):
    """A start, resume or stop that cannot happen; the message says why."""

    def __init__(self, message: str, problems: list[str] | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.problems = problems or [message]
        self.status = status  # 409: the run is busy (or not running); 400: bad input


@dataclass
class Launch:
    """One child run this Toolbox started: enough to follow it and find its folder."""

    id: str
    kind: str  # "new" or "resume"
    pid: int
    started: str
    log: str
    experiment_dir: str | None = None
    snapshot: str | None = None
    exit_code: int | None = None
    proc_start: str | None = None  # /proc start time: tells our pid from a reused one

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Launcher:
    """The Toolbox's child runs; all process work goes through here."""

    def __init__(self, toolbox: Toolbox) -> None:
        self.toolbox = toolbox
        self.launches: dict[str, Launch] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    # -- config -------------------------------------------------------------------------

    def prepare_config(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``data`` with the config schema and confine its paths to the roots.

        Returns the full effective config with absolute paths: the snapshot a
        run starts from (what it will do no longer depends on the form or file).
        """
        from nectargan.config import Config, ConfigError

        if not isinstance(data, Mapping):
            raise LaunchRefused("config: expected a JSON object of sections")
        raw = json.loads(json.dumps(data, allow_nan=True))
        common = raw.setdefault("common", {}) if isinstance(raw.get("common", {}), dict) else None
        if common is not None and not common.get("output_directory"):
            common["output_directory"] = str(self.toolbox.output_roots()[0])
        try:
            config = Config.load(raw).to_dict()
        except ConfigError as exc:
            raise LaunchRefused(str(exc), list(exc.problems)) from None
        roots = self.toolbox.roots
        try:
            config["common"]["output_directory"] = str(
                confine(config["common"]["output_directory"], roots)
            )
            if config["dataloader"].get("dataroot"):
                config["dataloader"]["dataroot"] = str(
                    confine(config["dataloader"]["dataroot"], roots)
                )
        except PathRefused as exc:
            raise LaunchRefused(str(exc)) from None
        return config

    def config_from_request(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """``{"config": {...}}`` or ``{"config_file": "path under a root"}``, prepared.

        A file is read now: the snapshot is what it held at this moment.
        """
        if data.get("config_file") is not None:
            if data.get("config") is not None:
                raise LaunchRefused("give config or config_file, not both")
            return self.prepare_config(self.read_config_file(str(data["config_file"])))
        return self.prepare_config(data.get("config") or {})

    def read_config_file(self, raw_path: str) -> dict[str, Any]:
        try:
            path = confine(raw_path, self.toolbox.roots)
            data = json.loads(path.read_text(encoding="utf-8"))
        except PathRefused as exc:
            raise LaunchRefused(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise LaunchRefused(
                f"config_file {raw_path!r}: cannot read it as JSON ({exc})"
            ) from None
        if not isinstance(data, dict):
            raise LaunchRefused(f"config_file {raw_path!r}: expected a JSON object of sections")
        return data

    def write_snapshot(self, config: Mapping[str, Any], launch_id: str) -> Path:
        path = self.toolbox.state_dir / SNAPSHOT_DIR / f"{launch_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(config, indent=1) + "\n")
        return path

    # -- start --------------------------------------------------------------------------

    def start_new(
        self, config: Mapping[str, Any], launch_id: str | None = None, snapshot: Path | None = None
    ) -> Launch:
        """Start a new run of an already prepared config (:meth:`prepare_config`)."""
        launch_id = launch_id or new_id()
        snapshot = snapshot or self.write_snapshot(config, launch_id)
        output = Path(config["common"]["output_directory"])
        log_path = output / PENDING_LOG_DIR / f"{launch_id}.log"
        args = ["train", "--config", str(snapshot)]
        device = self.toolbox.settings.get().default_device
        if device != "auto" and not _config_sets_device(config):
            args += ["--device", device]
        launch = self._spawn(launch_id, "new", args, log_path)
        launch.snapshot = str(snapshot)
        return launch

    def resume(self, experiment_dir: Path, extend_by: int = 0) -> Launch:
        """``train --resume DIR`` (``--epochs`` raised by ``extend_by``); refused while it runs."""
        holder = lock_holder(experiment_dir)
        if holder is not None:
            raise LaunchRefused(
                f"run {experiment_dir.name!r} is running (pid {holder}); stop it first",
                status=409,
            )
        args = ["train", "--resume", str(experiment_dir)]
        if extend_by:
            if not 1 <= extend_by <= 100_000:
                raise LaunchRefused(f"extend: expected 1-100000 epochs, got {extend_by}")
            args += ["--epochs", str(_train_epochs(experiment_dir) + extend_by)]
        launch = self._spawn(new_id(), "resume", args, experiment_dir / layout.TRAIN_LOG)
        launch.experiment_dir = str(experiment_dir)
        return launch

    def _spawn(self, launch_id: str, kind: str, args: list[str], log_path: Path) -> Launch:
        header = f"--- nectargan toolbox, {now_iso()}: {' '.join(args)}"
        proc = spawn(self.toolbox.options.python, args, log_path, self.toolbox.roots[0], header)
        launch = Launch(launch_id, kind, proc.pid, now_iso(), str(log_path))
        launch.proc_start = process_start_time(proc.pid)
        with self._lock:
            self.launches[launch_id] = launch
            self._procs[launch_id] = proc
        return launch

    # -- follow -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reap ended children, and move a new run's log into its folder once it is named."""
        with self._lock:
            items = list(self.launches.items())
        for launch_id, launch in items:
            proc = self._procs.get(launch_id)
            if proc is not None and launch.exit_code is None:
                launch.exit_code = proc.poll()
            if launch.experiment_dir is None:
                self._adopt_log(launch)

    def _adopt_log(self, launch: Launch) -> None:
        folder = experiment_named_in(Path(launch.log))
        if folder is None:
            return
        launch.experiment_dir = str(folder)
        target = folder / layout.TRAIN_LOG
        if not target.exists():
            with contextlib.suppress(OSError):  # another file system: the log stays where it is
                os.rename(launch.log, target)
                launch.log = str(target)

    def starting(self, experiment_dir: Path) -> Launch | None:
        """A live child of ours for ``experiment_dir`` (it may not hold the run's lock yet)."""
        self.refresh()
        folder = experiment_dir.resolve()
        with self._lock:
            launches = [x for x in self.launches.values() if x.experiment_dir]
        for launch in launches:
            if Path(launch.experiment_dir).resolve() == folder and self.alive(launch):
                return launch
        return None

    def alive(self, launch: Launch) -> bool:
        proc = self._procs.get(launch.id)
        if proc is not None:
            return proc.poll() is None
        return process_alive(launch.pid, launch.proc_start)

    # -- stop ---------------------------------------------------------------------------

    def stop(self, experiment_dir: Path) -> int:
        """SIGTERM the run training in ``experiment_dir``; returns the pid signalled."""
        pid = lock_holder(experiment_dir)
        if pid is None:  # a run of ours still starting: its process, before it takes the lock
            launch = self.starting(experiment_dir)
            pid = launch.pid if launch is not None else None
        if pid is None:
            raise LaunchRefused(f"run {experiment_dir.name!r} is not running", status=409)
        signal_run(pid)
        return pid

    def stop_launch(self, launch: Launch) -> None:
        """Stop a run that may not have made its folder yet (a queued run just started)."""
        if self.alive(launch):
            signal_run(launch.pid)


def signal_run(pid: int, sig: int = signal.SIGTERM) -> None:
    """Signal the run's process group when it leads its own session, else the process."""
    try:
        signal_session(pid, sig)
    except PermissionError as exc:
        raise LaunchRefused(f"cannot stop pid {pid}: it belongs to another user") from exc


def experiment_named_in(log: Path) -> Path | None:
    """The folder a run printed as ``experiment: DIR`` in the first lines of its output."""
    try:
        with open(log, encoding="utf-8", errors="replace") as handle:
            head = handle.read(16_384)
    except OSError:
        return None
    match = EXPERIMENT_LINE.search(head)
    return Path(match.group(1).strip()) if match else None


def _train_epochs(experiment_dir: Path) -> int:
    """``train.epochs`` of the run's effective config (the newest config file)."""
    files = [experiment_dir / layout.CONFIG_FILE] + sorted(
        (p for p in experiment_dir.glob("config.resume*.json")),
        key=lambda p: int(m.group(1)) if (m := layout.RESUME_CONFIG_RE.match(p.name)) else 0,
    )
    for path in reversed(files):
        try:
            return int(json.loads(path.read_text(encoding="utf-8"))["train"]["epochs"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    raise LaunchRefused(f"run {experiment_dir.name!r} has no readable config.json to extend")


def _config_sets_device(config: Mapping[str, Any]) -> bool:
    device = (config.get("common") or {}).get("device")
    return bool(device) and device != "auto"


def new_id() -> str:
    return uuid.uuid4().hex[:12]
