"""How long commands and the Visdom server take to start, and the server's memory.

Run: ``.venv/bin/python bench/startup.py`` (``--rounds N``; ``--checkout REV`` also
measures the code of git revision REV, from a temporary worktree, in the same rounds).

Every round runs each command once per code version, alternating, so a busy minute
hits both alike; the figure is the median over rounds. ``import torch`` alone is the
control: what any command that loads torch pays before it does anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from _common import cpu_model, free_port, positive_int, process_cpu_s

REPO = Path(__file__).resolve().parent.parent
COMMANDS = {
    "nectargan --help": ["-m", "nectargan", "--help"],
    "nectargan visdom status": ["-m", "nectargan", "visdom", "status", "--port", "1"],
    "nectargan config show --config demo": [
        "-m",
        "nectargan",
        "config",
        "show",
        "--config",
        "demo",
    ],
    "python -c 'import torch' (control)": ["-c", "import torch"],
}


def env_for(code: Path) -> dict[str, str]:
    """Run the package from ``code`` (PYTHONPATH comes before the editable install;
    the commands also run in ``code``, since ``-m`` puts the working folder first)."""
    return {**os.environ, "PYTHONPATH": str(code), "NECTARGAN_HOME": tempfile.gettempdir()}


def time_command(args: list[str], code: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], env=env_for(code), cwd=code, capture_output=True, check=False
    )
    return time.perf_counter() - t0


IDLE_S = 3.0


def time_server(code: Path) -> tuple[float, float, float]:
    """Seconds until a new server answers, its resident memory then (MB), and the CPU it
    then uses while nothing is sent to it (ms per second, over ``IDLE_S``).

    Started by hand, not with ``server.spawn``: the code under test is ``code``'s, so the
    process needs that folder as its working directory and PYTHONPATH."""
    import urllib.request

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "nectargan.visualizer.visdom._serve", "--port", str(port)]
        cmd += ["--host", "127.0.0.1", "--env-dir", tmp]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, env=env_for(code), cwd=code, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                    break
                except OSError:
                    if time.perf_counter() - t0 > 60:
                        raise RuntimeError("the server did not answer within 60 s") from None
                    time.sleep(0.01)
            elapsed = time.perf_counter() - t0
            rss_kb = next(
                int(line.split()[1])
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                if line.startswith("VmRSS:")
            )
            idle_before = process_cpu_s(proc.pid)
            time.sleep(IDLE_S)
            idle_ms_per_s = (process_cpu_s(proc.pid) - idle_before) * 1e3 / IDLE_S
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return elapsed, rss_kb / 1024, idle_ms_per_s


@contextmanager
def worktree(rev: str):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "code"
        added = subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev],
            capture_output=True,
            text=True,
        )
        if added.returncode != 0:
            sys.exit(f"startup.py: error: --checkout {rev!r}: {added.stderr.strip()}")
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                check=False,
                capture_output=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rounds", type=positive_int, default=5)
    p.add_argument("--checkout", metavar="REV", help="also measure this git revision")
    args = p.parse_args()
    with ExitStack() as stack:
        codes = {"now": REPO}
        if args.checkout:
            codes[args.checkout] = stack.enter_context(worktree(args.checkout))
        times: dict[tuple[str, str], list[float]] = {}
        rss: dict[str, list[float]] = {name: [] for name in codes}
        idle: dict[str, list[float]] = {name: [] for name in codes}
        for r in range(args.rounds):
            for name, code in codes.items():
                for label, cmd in COMMANDS.items():
                    times.setdefault((label, name), []).append(time_command(cmd, code))
                elapsed, mb, idle_cpu = time_server(code)
                times.setdefault(("Visdom server answers", name), []).append(elapsed)
                rss[name].append(mb)
                idle[name].append(idle_cpu)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    names = list(codes)
    print(f"Machine: {cpu_model()}; median of {args.rounds} rounds, seconds\n")
    print("| what | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label in [*COMMANDS, "Visdom server answers"]:
        cells = [f"{statistics.median(times[(label, n)]):.2f}" for n in names]
        print(f"| {label} | " + " | ".join(cells) + " |")
    cells = [f"{statistics.median(rss[n]):.0f} MB" for n in names]
    print("| Visdom server memory (RSS) | " + " | ".join(cells) + " |")
    cells = [f"{statistics.median(idle[n]):.1f} ms/s" for n in names]
    print("| Visdom server CPU while idle | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
