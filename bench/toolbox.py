"""The Toolbox's speed: start-up and memory, the Runs page over many long runs, how soon a
new epoch shows, and what watching costs a training run.

Run: ``.venv/bin/python bench/toolbox.py`` (``--experiments 200 --steps 10000``,
``--rounds N``, ``--watch-seconds S``; ``--skip-training`` leaves out the part that
trains a real tiny run).

* **start**: from ``exec`` of ``nectargan-toolbox`` and of ``nectargan toolbox`` to
  the URL being printed, and to the Runs page's first answer (a root holding one
  run), median of ``--start-rounds``; ``--baseline DIR`` times another checkout too,
  alternating with this one (a paired comparison on a busy machine). RSS after every
  measurement below (and the peak).
* **Runs page**: time to the first byte of ``GET /`` over ``--experiments`` runs,
  each holding a ``--steps``-step loss log (the page never reads loss logs): the
  first request after start (cold) and the median of ``--rounds`` more.
* **new epoch**: a Run page's event stream is open on a run whose files this
  script writes as a trainer would (a loss segment, a val row, the status record,
  an example); the time from the write to the event that carries the new epoch.
* **cost**: a real tiny ``nectargan train`` with no page open, its Run page, then
  its Run page and the Runs page streaming; the Toolbox's CPU time over the training
  run's CPU time in the same seconds (``/proc/PID/stat``: every thread counts, also
  the server's worker threads that ended meanwhile, which a sum over the live
  threads' schedstat would drop).
"""

from __future__ import annotations

import argparse
import fcntl
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import cpu_model, free_port, positive_int, process_cpu_ticks_s

REPO = Path(__file__).resolve().parent.parent
URL_RE = re.compile(r"http://127\.0\.0\.1:(\d+)/\?token=([0-9a-f]+)")
COMMANDS = {  # the two ways to start it: the console script parses only its own options
    "nectargan-toolbox": ["-c", "from nectargan.cli.toolbox_cmd import run; run()"],
    "nectargan toolbox": ["-m", "nectargan", "toolbox"],
}
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


# -- fixtures ---------------------------------------------------------------------------


def write_experiment(exp: Path, steps: int, epochs: int = 10, finished: bool = True) -> None:
    """A run folder as the trainer leaves it: loss log, val metrics, examples, checkpoints."""
    from nectargan.losses.loss_log import LossLog
    from nectargan.runs import records
    from nectargan.runs.status import StatusWriter

    exp.mkdir(parents=True)
    config = {"train": {"epochs": epochs, "epochs_decay": 0}}
    (exp / "config.json").write_text(json.dumps(config))
    write_epochs(exp, LossLog(exp), range(1, epochs + 1), steps // epochs)
    rows = [val_row(e) for e in range(1, epochs + 1)]
    records.write_val_metrics(exp, rows, split="val", best=min(rows, key=lambda r: r["l1"]))
    if finished:
        writer = StatusWriter(exp)
        writer.start(0, epochs)
        writer.progress(epochs)
        writer.end("finished")


def write_epochs(exp: Path, log, epochs, per_epoch: int) -> None:
    for name, tag in (("G_L1", "G"), ("D_real", "D")):
        log.describe_loss(name, {"tags": [tag], "weight": 1.0, "schedule": None})
    for epoch in epochs:
        first = (epoch - 1) * per_epoch
        steps = list(range(first, first + per_epoch))
        cols = {
            "epoch": [epoch - 1 + i / per_epoch for i in range(per_epoch)],
            "step": steps,
            "raw": [1.0 / (1 + s) for s in steps],
            "weight": [1.0] * per_epoch,
        }
        log.write_segment({"G_L1": cols, "D_real": dict(cols)})
        log.write_index()
        (exp / "examples").mkdir(exist_ok=True)
        (exp / "examples" / f"epoch_{epoch:04d}_0.png").write_bytes(PNG_1PX)
        (exp / "checkpoints").mkdir(exist_ok=True)
        (exp / "checkpoints" / f"epoch_{epoch:04d}.pt").write_bytes(b"x")


def val_row(epoch: int) -> dict:
    return {"epoch": epoch, "l1": 0.3 / epoch, "psnr": 10.0 + epoch, "ssim": 0.05 * epoch}


# -- the Toolbox process -------------------------------------------------------------------


class Toolbox:
    """``python -m nectargan toolbox`` on a free port; timed from exec to first answer."""

    def __init__(
        self,
        root: Path,
        state: Path,
        log: Path,
        command: str = "nectargan-toolbox",
        first: str = "/static/toolbox.css",  # served, and no run read yet
        tree: Path = REPO,
    ) -> None:
        self.port = free_port()
        started = time.perf_counter()
        cmd = [sys.executable, *COMMANDS[command], "--root", str(root)]
        cmd += ["--port", str(self.port), "--state-dir", str(state)]
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.proc = subprocess.Popen(
            cmd,
            stdout=open(log, "w"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tree,
        )
        while not (match := URL_RE.search(log.read_text())):
            time.sleep(0.002)
        self.url_s = time.perf_counter() - started
        self.token = match.group(2)
        while self.status(first) != 200:
            time.sleep(0.002)
        self.start_s = time.perf_counter() - started

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def status(self, path: str) -> int:
        try:
            conn = self.connection()
            conn.request("GET", path, headers=self.headers)
            code = conn.getresponse().status
            conn.close()
            return code
        except OSError:
            return 0

    def first_byte_s(self, path: str) -> float:
        conn = self.connection()
        started = time.perf_counter()
        conn.request("GET", path, headers=self.headers)
        response = conn.getresponse()  # returns once the status line and headers arrived
        elapsed = time.perf_counter() - started
        assert response.status == 200, response.status
        response.read()
        conn.close()
        return elapsed

    def rss_mb(self) -> tuple[float, float]:
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


class EventReader:
    """Reads one event stream in a thread; each message with the time it arrived."""

    def __init__(self, box: Toolbox, path: str) -> None:
        self.messages: list[tuple[float, dict]] = []
        self.conn = box.connection()
        headers = {**box.headers, "Accept": "text/event-stream"}
        self.conn.request("GET", path, headers=headers)
        self.response = self.conn.getresponse()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("data: "):
                    self.messages.append((time.perf_counter(), json.loads(line[6:])))
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            return  # closed by close(): http.client drops its file on the way

    def wait(self, predicate, after: float, timeout: float = 30.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for at, message in list(self.messages):
                if at >= after and predicate(message):
                    return at
            time.sleep(0.005)
        raise TimeoutError("no event with the new epoch")

    def close(self) -> None:
        self.conn.close()


# -- measurements -------------------------------------------------------------------------


def measure_runs_page(box: Toolbox, rounds: int) -> tuple[float, float]:
    cold = box.first_byte_s("/")
    warm = [box.first_byte_s("/") for _ in range(rounds)]
    return cold, statistics.median(warm)


def measure_new_epoch(box: Toolbox, exp: Path, rounds: int) -> list[float]:
    """Write epochs into ``exp`` (whose lock this process holds) and time their events."""
    from nectargan.losses.loss_log import LossLog
    from nectargan.runs import records
    from nectargan.runs.status import StatusWriter

    lock = os.open(exp / ".nectargan.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.pwrite(lock, f"{os.getpid()}\n".encode(), 0)
    writer = StatusWriter(exp)
    writer.start(1, 1000)
    log = LossLog(exp)
    reader = EventReader(box, f"/runs/0/{exp.name}/events")
    latencies = []
    try:
        reader.wait(lambda m: m["epoch"] == 1, 0)
        for epoch in range(2, rounds + 2):
            time.sleep(0.7)  # not in step with the page's polling
            wrote = time.perf_counter()
            write_epochs(exp, log, [epoch], 1000)
            records.append_val_metrics(exp, val_row(epoch), "val", val_row(epoch))
            writer.progress(epoch)
            seen = reader.wait(
                lambda m, e=epoch: m["epoch"] == e and m["val"][-1]["epoch"] == e, wrote
            )
            latencies.append(seen - wrote)
    finally:
        reader.close()
        writer.end("finished")
        os.close(lock)
    return latencies


def measure_cost(box: Toolbox, root: Path, seconds: float) -> list[tuple[str, float, float, float]]:
    """A real tiny training run, not watched, watched by its Run page alone, then with the
    Runs page too: (what, toolbox CPU s, training CPU s, wall s) for each."""
    data = root / "synth"
    from nectargan.dataset import generate_synthetic_dataset

    generate_synthetic_dataset(data, n=40, size=32)
    config = {
        "common": {"output_directory": str(root / "output"), "experiment_name": "watched"},
        "dataloader": {"dataroot": str(data), "load_size": 32, "crop_size": 32, "batch_size": 4},
        "train": {"epochs": 1000, "epochs_decay": 0, "generator": {"features": 8, "n_downs": 5}},
        "visualizer": {"visdom": {"enable": False}},
    }
    conn = box.connection()
    body = json.dumps({"config": config})
    conn.request("POST", "/api/runs", body=body, headers=box.headers)
    launch = json.loads(conn.getresponse().read())["launch"]
    pid = launch["pid"]
    exp = root / "output" / "watched_v1"
    while not (exp / "checkpoints" / "epoch_0001.pt").exists():  # past start-up: training
        time.sleep(0.2)
    results = []
    try:
        for what, paths in (
            ("no page (the Toolbox idle)", []),
            ("its Run page", ["/runs/0/watched_v1/events"]),
            ("its Run page + the Runs page", ["/runs/0/watched_v1/events", "/runs/events"]),
        ):
            readers = [EventReader(box, path) for path in paths]
            time.sleep(2)  # the streams' first (full) messages are not the steady cost
            box_cpu, run_cpu = process_cpu_ticks_s(box.proc.pid), process_cpu_ticks_s(pid)
            started = time.perf_counter()
            time.sleep(seconds)
            box_used = process_cpu_ticks_s(box.proc.pid) - box_cpu
            run_used = process_cpu_ticks_s(pid) - run_cpu
            results.append((what, box_used, run_used, time.perf_counter() - started))
            if readers:
                assert len(readers[0].messages) >= 2, "the Run page stream sent no updates"
            for reader in readers:
                reader.close()
    finally:
        os.killpg(pid, 15) if os.getsid(pid) == pid else os.kill(pid, 15)
    return results


def measure_start(tmp: Path, rounds: int, baseline: Path | None) -> dict[str, list[float]]:
    """Exec to URL and exec to the Runs page's first answer, per command (and tree), the
    trees alternating in every round so a change in the machine's load hits both."""
    root = tmp / "start-root"
    write_experiment(root / "output" / "one_v1", 100, epochs=2)
    trees = {"": REPO} if baseline is None else {"": REPO, " (baseline)": baseline}
    times: dict[str, list[float]] = {}
    for k in range(rounds):
        for name in COMMANDS:
            for label, tree in trees.items():
                log = tmp / f"start{k}.log"
                box = Toolbox(root, tmp / "state", log, name, first="/", tree=tree)
                box.stop()
                times.setdefault(f"{name}{label}: URL printed", []).append(box.url_s)
                times.setdefault(f"{name}{label}: Runs page answered", []).append(box.start_s)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", type=positive_int, default=200)
    parser.add_argument("--steps", type=positive_int, default=10_000)
    parser.add_argument("--rounds", type=positive_int, default=20)
    parser.add_argument("--watch-seconds", type=positive_int, default=60)
    parser.add_argument("--start-rounds", type=positive_int, default=7)
    parser.add_argument("--baseline", type=Path, help="another checkout to time start-up against")
    parser.add_argument("--only-start", action="store_true", help="time start-up alone")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    if args.only_start:
        with tempfile.TemporaryDirectory(prefix="bench-toolbox-") as tmp:
            starts = measure_start(Path(tmp), args.start_rounds, args.baseline)
        print_machine()
        print_starts(starts)
        return
    with tempfile.TemporaryDirectory(prefix="bench-toolbox-") as tmp:
        root = Path(tmp) / "root"
        output = root / "output"
        made = time.perf_counter()
        for i in range(args.experiments):
            write_experiment(output / f"bench{i:03d}_v1", args.steps)
        write_experiment(output / "live_v1", 1000, epochs=1, finished=False)
        print(
            f"{args.experiments} experiments of {args.steps} steps written in "
            f"{time.perf_counter() - made:.0f} s"
        )
        starts = measure_start(Path(tmp), args.start_rounds, args.baseline)
        box = Toolbox(root, Path(tmp) / "state", Path(tmp) / "toolbox.log")
        try:
            cold, warm = measure_runs_page(box, args.rounds)
            latencies = measure_new_epoch(box, output / "live_v1", 5)
            cost = None if args.skip_training else measure_cost(box, root, args.watch_seconds)
            rss, peak = box.rss_mb()
        finally:
            box.stop()
    print_machine()
    print_starts(starts)
    print(f"RSS after the measurements: {rss:.0f} MB (peak {peak:.0f} MB)")
    print(
        f"Runs page, {args.experiments} runs x {args.steps}-step logs, first byte: "
        f"{cold * 1000:.0f} ms cold, {warm * 1000:.0f} ms median of {args.rounds}"
    )
    print(
        "new epoch on the Run page after its files change: "
        + ", ".join(f"{s:.2f}" for s in latencies)
        + f" s (max {max(latencies):.2f} s)"
    )
    for what, box_used, run_used, wall in cost or []:
        print(
            f"cost to a training run watched by {what} ({wall:.0f} s): Toolbox "
            f"{box_used:.2f} CPU s ({1000 * box_used / wall:.1f} ms/s) vs the run's "
            f"{run_used:.1f} CPU s = {100 * box_used / run_used:.2f} %"
        )


def print_machine() -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Machine: {cpu_model()}, {os.cpu_count()} CPUs, load average {load} (1, 5, 15 min)")


def print_starts(starts: dict[str, list[float]]) -> None:
    for what, values in starts.items():
        print(
            f"start, {what}: median {statistics.median(values) * 1000:.0f} ms of {len(values)} "
            f"({min(values) * 1000:.0f}-{max(values) * 1000:.0f} ms)"
        )


if __name__ == "__main__":
    main()
