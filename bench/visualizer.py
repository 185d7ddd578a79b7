"""What the Visdom visualizer costs a training loop, and whether everything arrives in time.

Run: ``.venv/bin/python bench/visualizer.py`` (``--write-docs`` also replaces
the "Visualizer" section of docs/benchmarks.md; ``--quick`` for a smoke run).

One run, side by side, blocks interleaved so that machine noise hits every
mode alike: a CPU training-like loop (a small conv encoder/decoder, Adam, a
1x3x256x256 image) with no visualizer, with the visualizer in single-thread
mode and in threaded mode, each updating every iteration with the
(x, target, output) triplet and 6 losses; then the same two modes against a
slow server (a loopback proxy, in its own process, holding every request
200 ms). Reported: mean iteration time relative to no visualizer,
training-thread time per update (median, p99), loss points delivered /
sent, and latency from the update call to the server's acknowledgement.

Then the long-run case: a flush when every series holds 100k points,
against what a Visdom ``update='append'`` of one point costs on a pane that
holds them all.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch
from _common import free_port
from torch import nn

from nectargan.visualizer.visdom import server as managed
from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

INTERVAL = 2.0
DELAY = 0.2
SECTION = "## Visualizer (bench/visualizer.py)"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
G_NAMES = ("G_GAN", "G_L1", "G_VGG", "G_FM")
D_NAMES = ("D_real", "D_fake")


# -- processes: a Visdom server and a delay proxy ------------------------------------


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def start_visdom(env_dir: Path) -> tuple[subprocess.Popen, int]:
    opts = managed.ServerOptions(port=free_port(), host="127.0.0.1", env_dir=env_dir)
    proc = managed.spawn(opts, env_dir.parent / "visdom.log")
    if not managed.wait_until_answering(opts, 30, pid=proc.pid):
        raise RuntimeError("the Visdom server did not start")
    return proc, opts.port


def start_delay_proxy(upstream: int, delay: float) -> tuple[subprocess.Popen, int]:
    """The proxy runs in its own process so its work does not count against the loop."""
    port = free_port()
    cmd = [sys.executable, __file__, "--delay-proxy", str(port), str(upstream), str(delay)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def serve_delay_proxy(port: int, upstream: int, delay: float) -> None:
    """HTTP/1.1 keep-alive proxy: read the request, wait ``delay`` s, forward, answer."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(delay)
            conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
            conn.request("POST", self.path, body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
            self.send_response(resp.status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


# -- the training-like loop ------------------------------------------------------------


def photo_like() -> torch.Tensor:
    """A 1x3x256x256 image in [-1, 1] with photo-like structure (white noise would be the
    worst case for PNG, which real images never are)."""
    coarse = torch.rand(1, 3, 8, 8) * 2 - 1
    smooth = nn.functional.interpolate(coarse, size=(256, 256), mode="bicubic")
    return (smooth + 0.05 * torch.randn(1, 3, 256, 256)).clamp(-1, 1)


class TrainingLoop:
    """A small pix2pix-shaped step on the CPU: conv encoder/decoder, L1 + a toy GAN term, Adam.

    About 190 ms per iteration on one core here at the default width of 64 (60 ms at
    ``--width 32``): still far lighter than a real pix2pix step on a CPU (a UNet-256
    is seconds), so the visualizer's share is if anything overstated. The "added CPU"
    column is independent of the loop.
    """

    def __init__(self, width: int = 64) -> None:
        torch.manual_seed(0)
        c = width
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, 2, 1),
            nn.BatchNorm2d(2 * c),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1),
            nn.BatchNorm2d(4 * c),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1),
            nn.BatchNorm2d(2 * c),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.ConvTranspose2d(c, 3, 4, 2, 1),
            nn.Tanh(),
        )
        self.opt = torch.optim.Adam(self.net.parameters(), lr=2e-4)
        self.x, self.target = photo_like(), photo_like()

    def step(self) -> tuple[torch.Tensor, dict[str, float], dict[str, float]]:
        out = self.net(self.x)
        l1 = (out - self.target).abs().mean()
        gan = out.mean().pow(2)
        loss = l1 * 100 + gan
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        g = {"G_GAN": gan.item(), "G_L1": l1.item(), "G_VGG": l1.item() * 0.5, "G_FM": 0.1}
        d = {"D_real": 0.7, "D_fake": 0.3}
        return out.detach(), g, d


# -- measurement -----------------------------------------------------------------------


@dataclass
class Mode:
    name: str
    vis: VisdomVisualizer | None = None
    threaded: bool = False
    iter_times: list[float] = field(default_factory=list)
    call_times: list[float] = field(default_factory=list)
    marks: list[tuple[float, int]] = field(default_factory=list)  # (call time, G points so far)
    deliveries: list[tuple[float, int]] = field(default_factory=list)  # (ack time, G points)
    g_points: int = 0
    blocks: list[tuple[float, float]] = field(default_factory=list)  # per block: wall, CPU per iter
    after_base: list[int] = field(default_factory=list)  # baseline block preceding each block

    def __post_init__(self) -> None:
        if self.vis is not None:
            self.vis.clear_env()
            self.vis._engine.on_delivery = self._delivered  # benchmark hook

    def _delivered(self, win: str, raw_total: int, t: float) -> None:
        if win == "loss_G":
            self.deliveries.append((t, raw_total))

    def latencies(self) -> list[float]:
        out, j = [], 0
        for t_call, needed in self.marks:
            while j < len(self.deliveries) and self.deliveries[j][1] < needed:
                j += 1
            if j == len(self.deliveries):
                break
            out.append(self.deliveries[j][0] - t_call)
        return out


def run_block(loop: TrainingLoop, mode: Mode, seconds: float, min_iters: int = 5) -> None:
    """Iterate for ``seconds``. A threaded mode's thread runs on across its blocks; after a
    block the benchmark waits, untimed, for the thread's next cycle to deliver what the block
    produced, so none of its work spills into another mode's block."""
    vis = mode.vis
    if vis is not None and mode.threaded and not vis.is_threaded:
        vis.start_thread()
    wall0, cpu0, n = time.perf_counter(), time.process_time(), 0
    while n < min_iters or time.perf_counter() - wall0 < seconds:
        t0 = time.perf_counter()
        out, g, d = loop.step()
        if vis is not None:
            t_call = time.monotonic()
            c0 = time.perf_counter()
            vis.update_images(loop.x, loop.target, out, "x | target | output")
            vis.update_loss_graphs(len(mode.iter_times), g, d)
            mode.call_times.append(time.perf_counter() - c0)
            mode.g_points += len(g)
            mode.marks.append((t_call, mode.g_points))
        mode.iter_times.append(time.perf_counter() - t0)
        n += 1
    mode.blocks.append(((time.perf_counter() - wall0) / n, (time.process_time() - cpu0) / n))
    if vis is not None and mode.threaded:
        deadline = time.monotonic() + 2 * INTERVAL + 5
        while not delivered(vis) and time.monotonic() < deadline:
            time.sleep(0.05)


def delivered(vis: VisdomVisualizer) -> bool:
    s = vis.stats
    return s.points_pending == 0 and s.images_sent + s.images_coalesced == s.images_received


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# -- long runs -------------------------------------------------------------------------


def long_run(port: int, points: int) -> dict[str, float]:
    """Flush time with ``points`` per series (6 series), and Visdom's own append at that size."""
    vis = VisdomVisualizer(
        env="bench_longrun", server="http://127.0.0.1", port=port, update_interval=3600
    )
    vis.clear_env()
    vis.start_thread()
    for i in range(points):
        vis.update_loss_graphs(i, dict.fromkeys(G_NAMES, i / points), dict.fromkeys(D_NAMES, 0.5))
    vis.stop_thread()  # folds and delivers everything (the thread's interval never came)
    assert vis.stats.points_pending == 0
    vis.start_thread()  # the long interval never elapses: the flushes below are the only ones
    cycles = []
    for i in range(5):  # a steady-state cycle: one more point, the whole (bounded) windows out
        vis.update_loss_graphs(points + i, dict.fromkeys(G_NAMES, 1.0), dict.fromkeys(D_NAMES, 1.0))
        start = time.perf_counter()
        assert vis.flush()
        cycles.append(time.perf_counter() - start)
    vis.stop_thread()
    shown = vis.stats.shown_points["loss_G"]
    vis.clear_env()
    return {"flush": statistics.median(cycles), "shown": shown, **naive_append(port, points)}


def naive_append(port: int, points: int) -> dict[str, float]:
    """What one ``update='append'`` costs Visdom when its pane holds every point."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def post(endpoint: str, msg: dict) -> float:
        start = time.perf_counter()
        conn.request("POST", f"/{endpoint}", json.dumps(msg).encode())
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
        return time.perf_counter() - start

    xs = list(range(points))
    names = G_NAMES + D_NAMES
    data = [
        {"x": xs, "y": [0.5] * points, "name": n, "type": "scatter", "mode": "lines"} for n in names
    ]
    msg = {"eid": "bench_naive", "win": "w", "data": data, "layout": {}, "opts": {}}
    create = post("events", msg)
    add = [{"x": [points], "y": [0.5], "type": "scatter"} for _ in names]
    append = post(
        "update", {"eid": "bench_naive", "win": "w", "data": add, "append": True, "opts": {}}
    )
    post("close", {"eid": "bench_naive", "win": "w"})
    conn.close()
    return {"naive_create": create, "naive_append": append}


# -- report ----------------------------------------------------------------------------


def ratios(mode: Mode, base: Mode, which: int) -> float:
    """Median over blocks of (block / mean of the baseline blocks just before and after it)."""
    if mode is base:
        return 1.0
    per_block = [
        block[which] / statistics.fmean((base.blocks[i][which], base.blocks[i + 1][which]))
        for block, i in zip(mode.blocks, mode.after_base, strict=True)
    ]
    return statistics.median(per_block)


def report(modes: list[Mode], longrun: dict[str, float], args: argparse.Namespace) -> str:
    base = modes[0]
    rows = [
        "| mode | iterations | mean iteration | ratio to no visualizer (wall) | ratio (process CPU) "
        "| added CPU per iteration | update call median | update call p99 "
        "| loss points delivered / sent | latency p50 | latency p95 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in modes:
        mean = statistics.fmean(w for w, _ in m.blocks)
        added = (ratios(m, base, 1) - 1) * statistics.fmean(c for _, c in base.blocks)
        cells = [
            m.name,
            str(len(m.iter_times)),
            f"{mean * 1e3:.1f} ms",
            f"{ratios(m, base, 0):.3f}",
            f"{ratios(m, base, 1):.3f}",
            f"{added * 1e3:+.2f} ms",
        ]
        if m.vis is None:
            cells += ["-"] * 5
        else:
            stats = m.vis.stats
            lat = m.latencies()
            cells += [
                f"{statistics.median(m.call_times) * 1e3:.2f} ms",
                f"{pct(m.call_times, 99) * 1e3:.2f} ms",
                f"{stats.points_delivered} / {stats.points_received}"
                f" ({100 * stats.points_delivered / max(1, stats.points_received):.1f}%)",
                f"{pct(lat, 50):.2f} s" if lat else "-",
                f"{pct(lat, 95):.2f} s" if lat else "-",
            ]
        rows.append("| " + " | ".join(cells) + " |")
    cmd = ".venv/bin/python bench/visualizer.py" + (" --quick" if args.quick else "")
    if args.width != 64:
        cmd += f" --width {args.width}"
    lines = [
        SECTION,
        "",
        f"Command: `{cmd}` (add `--write-docs` to refresh this section).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared with other work), "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} thread(s); loop width {args.width}). "
        f"Interval {INTERVAL:g} s; blocks of "
        f"{args.block:g} s, every mode's block between two no-visualizer blocks, {args.rounds} "
        "rounds (order reversed every other round); a ratio is the median over a mode's blocks "
        "of its time per iteration over the mean of the two no-visualizer blocks around it. "
        "The thread runs throughout a threaded mode; after each of its blocks the benchmark "
        "waits, untimed, for the cycle that delivers the block's last points (one cycle in "
        f"about {args.block / INTERVAL + 1:.0f} goes untimed). Process CPU counts our "
        "threads (training and visualizer), not the server's. "
        "Every iteration sends a "
        "1x3x256x256 (x, target, output) triplet (photo-like content; shown at 300 px, "
        "sent as PNG) and 6 losses. "
        f'"slow server": a loopback proxy holding each request {DELAY * 1e3:.0f} ms. '
        "Latency: from the update call to the server's acknowledgement of the window "
        "holding that point.",
        "",
        *rows,
        "",
        f"Long run, {args.points:,} points in each of 6 series: each series shows "
        f"{int(longrun['shown'])} points (bucket means, see docs/visualizer.md); a "
        f"steady-state flush (fold, encode, send both loss windows whole) takes "
        f"{longrun['flush'] * 1e3:.0f} ms (median of 5). For comparison, Visdom's own "
        f"`update='append'` of one point to a pane holding all {args.points:,} points per "
        f"series takes {longrun['naive_append']:.1f} s (creating that pane: "
        f"{longrun['naive_create']:.2f} s).",
        "",
        "Reading it: the control row (the baseline measured against itself) shows the noise "
        "of this shared machine; the added-CPU column is what the visualizer costs per "
        "iteration whatever the loop, so the ratio for another loop is about 1 + that / its "
        "iteration time. Single-thread mode pays every request on the training thread "
        "(here three per iteration: both loss windows and the image).",
        "",
        "Targets: threaded ratio <= 1.02, update call <= 1 ms median, 100% delivered, "
        f"p95 latency <= interval + 0.5 s = {INTERVAL + 0.5:g} s; slow server: threaded "
        "ratio <= 1.05.",
        "",
    ]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--quick", action="store_true", help="short blocks, 10k-point long run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--width", type=int, default=64, help="loop's conv width (default 64)")
    parser.add_argument("--delay-proxy", nargs=3, metavar=("PORT", "UPSTREAM", "DELAY"))
    args = parser.parse_args()
    if args.delay_proxy:
        port, upstream, delay = args.delay_proxy
        serve_delay_proxy(int(port), int(upstream), float(delay))
        return
    args.rounds, args.block, args.points = (1, 3.0, 10_000) if args.quick else (5, 8.0, 100_000)
    # One torch thread: on a shared 2-core machine, two OpenMP threads spin-wait on each
    # other whenever anything else runs, and iteration times swing 10x. The visualizer's
    # thread and the Visdom server compete with the loop for the other core.
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        visdom, port = start_visdom(Path(tmp) / "envs")
        proxy, slow_port = start_delay_proxy(port, DELAY)
        try:

            def vis(env: str, p: int) -> VisdomVisualizer:
                return VisdomVisualizer(env=env, server="http://127.0.0.1", port=p)

            modes = [
                Mode("no visualizer"),
                Mode("no visualizer (control: the noise floor)"),
                Mode("single-thread", vis("bench_single", port)),
                Mode("threaded", vis("bench_threaded", port), threaded=True),
                Mode("single-thread, slow server", vis("bench_single_slow", slow_port)),
                Mode("threaded, slow server", vis("bench_threaded_slow", slow_port), threaded=True),
            ]
            loop = TrainingLoop(args.width)
            run_block(loop, Mode("warm-up"), 2.0)
            base, others = modes[0], modes[1:]
            run_block(loop, base, args.block)
            for r in range(args.rounds):  # B M1 B M2 B ...: every block between two baselines
                for m in others if r % 2 == 0 else others[::-1]:
                    m.after_base.append(len(base.blocks) - 1)
                    run_block(loop, m, args.block)
                    run_block(loop, base, args.block)
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
            for m in modes:
                if m.vis is not None:
                    m.vis.stop_thread(timeout=10)
            longrun = long_run(port, args.points)
        finally:
            proxy.terminate()
            visdom.terminate()
            proxy.wait(10)
            visdom.wait(10)
    section = report(modes, longrun, args)
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
