"""Generator inference speed: torch eager fp32, torch bf16 autocast, onnxruntime fp32.

Run: ``PYTHONPATH=. .venv/bin/python bench/inference.py`` (``--quick`` for a smoke
run; ``--models default demo``, ``--batch 1 8``, ``--rounds N``, ``--threads N``,
``--json FILE``). Prints a Markdown table for docs/benchmarks.md.

Models: the default config's generator (256 px, 64 features, n_downs 8) and the demo
config's (64 px, 32 features, n_downs 6), freshly initialised (speed does not depend
on the weights), in eval mode, as ``nectargan infer`` runs them.

Timing: all variants of one (model, batch) live in this process and run in short
blocks, round after round in rotating order, so load drift on a shared machine hits
them alike; images/s is the median over rounds, and the ratio to eager is the median
of per-round ratios (a paired statistic). Peak RSS: each variant runs again alone in
a child process that reports ``ru_maxrss``; the onnxruntime child imports neither
torch nor NectarGAN, as a deployment would.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model, vm_hwm_kib

MODELS = {
    "default": {},
    "demo": {
        "train.generator.features": 32,
        "train.generator.n_downs": 6,
        "dataloader.crop_size": 64,
    },
}
VARIANTS = ("eager-fp32", "eager-bf16", "onnxruntime-fp32")
Runner = Callable[[np.ndarray], Any]


def build(model: str):  # noqa: ANN201 (torch types, imported lazily)
    import torch

    from nectargan.config import Config
    from nectargan.inference.model_info import ModelInfo
    from nectargan.trainers.builders import build_generator

    config = Config.load(None).with_overrides(MODELS[model])
    torch.manual_seed(0)
    return build_generator(config).eval(), ModelInfo.from_config(config), config


def export(model: str, workdir: Path) -> Path:
    from nectargan.onnx.converter import export_onnx

    generator, info, _ = build(model)
    path = workdir / f"{model}.onnx"
    started = time.perf_counter()
    export_onnx(generator, info, path)
    print(f"exported {model} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


def torch_runner(model: str, bf16: bool, threads: int) -> Runner:
    import torch

    if threads:
        torch.set_num_threads(threads)
    generator, _, _ = build(model)

    def run(x: np.ndarray) -> Any:
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            return generator(torch.from_numpy(x)).float()

    return run


def ort_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def make_runner(variant: str, model: str, onnx_path: Path, threads: int) -> Runner:
    if variant == "onnxruntime-fp32":
        return ort_runner(onnx_path, threads)
    return torch_runner(model, variant == "eager-bf16", threads)


def sample(model: str, batch: int) -> np.ndarray:
    size = 256 if model == "default" else 64
    return np.random.default_rng(0).uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)


def block(run: Runner, x: np.ndarray, seconds: float, min_iters: int = 2) -> float:
    """Seconds per forward pass, averaged over a block of about ``seconds``."""
    n, started = 0, time.perf_counter()
    while n < min_iters or time.perf_counter() - started < seconds:
        run(x)
        n += 1
    return (time.perf_counter() - started) / n


def time_variants(
    runners: dict[str, Runner], x: np.ndarray, rounds: int, seconds: float
) -> dict[str, list[float]]:
    for run in runners.values():  # warm-up: allocations, oneDNN primitive caches
        block(run, x, seconds / 2)
    names = list(runners)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(block(runners[name], x, seconds))
    return times


def child_main(args: argparse.Namespace) -> None:
    """One variant alone: a few forward passes, then the peak resident set size."""
    variant, model, batch = args.child
    x = sample(model, int(batch))
    run = make_runner(variant, model, Path(args.onnx), args.threads)
    for _ in range(3):
        run(x)
    print(
        json.dumps(
            {
                "peak_rss_mb": vm_hwm_kib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
                / 1024,
                "torch_loaded": "torch" in sys.modules,
            }
        )
    )


def peak_rss(variant: str, model: str, batch: int, onnx_path: Path, threads: int) -> float:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        variant,
        model,
        str(batch),
        "--onnx",
        str(onnx_path),
    ]
    cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mb"]


def machine() -> str:
    import onnxruntime
    import torch

    from nectargan.trainers.precision import cpu_supports_bf16

    return (
        f"{cpu_model()}, {len(__import__('os').sched_getaffinity(0))} CPUs, native bf16: "
        f"{cpu_supports_bf16()}; Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads by default), onnxruntime {onnxruntime.__version__}"
    )


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine']}. Threads (torch and onnxruntime intra-op): "
        f"{results['threads'] or 'each library default'}; {results['rounds']} rounds of "
        f"{results['seconds']} s blocks per variant.",
        "",
        "| model | batch | variant | images/s | ms / batch | ratio to eager fp32 | peak RSS MiB |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        rss = row.get("peak_rss_mb")
        lines.append(
            f"| {row['model']} | {row['batch']} | {row['variant']} | {row['images_per_s']:.2f} | "
            f"{row['ms_per_batch']:.1f} | {row['ratio']:.2f}x | {'-' if rss is None else f'{rss:.0f}'} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0, help="length of one timed block")
    p.add_argument(
        "--threads", type=int, default=0, help="torch and onnxruntime threads (0: their defaults)"
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-RSS child runs")
    p.add_argument("--quick", action="store_true", help="smoke run: demo model, 1 round")
    p.add_argument("--json", metavar="FILE")
    p.add_argument(
        "--child", nargs=3, metavar=("VARIANT", "MODEL", "BATCH"), help=argparse.SUPPRESS
    )
    p.add_argument("--onnx", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.models, args.batch, args.rounds, args.seconds = ["demo"], [1], 1, 0.5
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child_main(args)
        return
    from nectargan.trainers.precision import cpu_supports_bf16

    variants = [v for v in args.variants if v != "eager-bf16" or cpu_supports_bf16()]
    results: dict[str, Any] = {
        "machine": machine(),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "threads": args.threads,
        "rows": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            onnx_path = export(model, Path(tmp))
            for batch in args.batch:
                x = sample(model, batch)
                runners = {v: make_runner(v, model, onnx_path, args.threads) for v in variants}
                times = time_variants(runners, x, args.rounds, args.seconds)
                base = times.get("eager-fp32")
                for variant in variants:
                    per_batch = statistics.median(times[variant])
                    ratio = (
                        statistics.median(b / t for b, t in zip(base, times[variant], strict=True))
                        if base
                        else float("nan")
                    )
                    row = {
                        "model": model,
                        "batch": batch,
                        "variant": variant,
                        "ms_per_batch": per_batch * 1000,
                        "images_per_s": batch / per_batch,
                        "ratio": ratio,
                        "block_seconds": times[variant],
                    }
                    if not args.no_memory:
                        row["peak_rss_mb"] = peak_rss(
                            variant, model, batch, onnx_path, args.threads
                        )
                    results["rows"].append(row)
                    print(
                        f"{model} b{batch} {variant}: {row['images_per_s']:.2f} img/s ({ratio:.2f}x)",
                        file=sys.stderr,
                    )
                del runners
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
