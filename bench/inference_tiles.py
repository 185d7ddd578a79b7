"""Peak memory and time of ``nectargan infer`` on a large image, in one pass and in tiles.

Run: ``PYTHONPATH=. .venv/bin/python bench/inference_tiles.py`` (``--quick`` for a smoke
run; ``--features 32 --n-downs 8``, ``--size 4000x3000``, ``--budget 1G``,
``--backends torch onnxruntime``, ``--threads N``, ``--json FILE``). Prints a Markdown
table for docs/benchmarks.md.

Each case runs alone in a child process: it builds the generator (fixed seed; speed and
memory do not depend on the weights), then runs the real inference path
(``infer_images``: decode, reflect-pad, forward or tiles, crop, PNG write) on one image
file. Peak memory is the child's VmHWM minus its resident set just before inference
(the model and libraries), so the figure is what the image costs. Alongside, the
estimate that drives automatic tiling (``nectargan.inference.memory``) for the same
pass, to check its calibration; extra one-pass rows at smaller sizes do the same.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model, vm_hwm_kib

CALIBRATION_SIZES = ("1024x1024", "2048x1536")


def parse_hw(text: str) -> tuple[int, int]:
    """``'4000x3000'`` (width x height) -> (height, width)."""
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def build(features: int, n_downs: int):  # noqa: ANN201 (torch types, imported lazily)
    import torch

    from nectargan.config import Config
    from nectargan.inference.model_info import ModelInfo
    from nectargan.trainers.builders import build_generator

    overrides = {"train.generator.features": features, "train.generator.n_downs": n_downs}
    config = Config.load(None).with_overrides(overrides)
    torch.manual_seed(0)
    return build_generator(config).eval(), ModelInfo.from_config(config)


def write_image(path: Path, hw: tuple[int, int]) -> None:
    """A photo-like test image: smooth shading plus texture (random noise compresses badly)."""
    from PIL import Image

    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(0)
    base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], -1) * 200
    texture = rng.normal(0, 12, (h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w]
    Image.fromarray(np.clip(base + texture + 20, 0, 255).astype(np.uint8)).save(path)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def child_main(args: argparse.Namespace) -> None:
    """One case alone: the backend, then one ``infer_images`` call; prints a JSON line."""
    import torch

    from nectargan.inference.backends import TorchBackend
    from nectargan.inference.inputs import InputItem
    from nectargan.inference.memory import forward_bytes
    from nectargan.inference.runner import InferOptions, infer_images
    from nectargan.inference.sizing import next_multiple

    if args.threads:
        torch.set_num_threads(args.threads)
    generator, info = build(args.features, args.n_downs)
    if args.backend == "onnxruntime":
        from nectargan.onnx.tester import load_backend

        del generator
        backend = load_backend(args.onnx, "cpu", args.threads)
    else:
        backend = TorchBackend(generator, info, "cpu")
    image = Path(args.image)
    options = InferOptions(
        tile=0 if args.budget_bytes is None else None,
        memory_budget=args.budget_bytes,
        overwrite=True,
    )
    out = Path(args.out)
    before = rss_kib()
    started = time.perf_counter()
    notes = io.StringIO()
    infer_images(backend, [InputItem(image, Path("out.png"), True)], out, options, notes)
    seconds = time.perf_counter() - started
    peak = vm_hwm_kib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    from PIL import Image

    w, h = Image.open(image).size
    m = info.size_multiple
    estimate = forward_bytes(info, next_multiple(h, m), next_multiple(w, m), 1, backend.runtime)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mib": (peak - before) / 1024,
                "baseline_mib": before / 1024,
                "estimate_mib": (estimate or 0) / 1024**2,
                "note": notes.getvalue().strip(),
            }
        )
    )


def run_case(
    args: argparse.Namespace, backend: str, image: Path, budget: int | None, workdir: Path
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--backend", backend, "--image", str(image)]
    cmd += ["--features", str(args.features), "--n-downs", str(args.n_downs)]
    cmd += ["--out", str(workdir / "out"), "--threads", str(args.threads)]
    if args.onnx_path:
        cmd += ["--onnx", str(args.onnx_path)]
    if budget is not None:
        cmd += ["--budget-bytes", str(budget)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{backend} on {image.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def export(args: argparse.Namespace, workdir: Path) -> Path:
    import onnx

    from nectargan.onnx.converter import export_onnx
    from nectargan.onnx.metadata import metadata_for, write_metadata

    generator, info = build(args.features, args.n_downs)
    path = workdir / "generator.onnx"
    export_onnx(generator, info, path)
    model = onnx.load(str(path))
    write_metadata(model, metadata_for(info))
    onnx.save(model, str(path))
    return path


def machine(threads: int) -> str:
    import torch

    return (
        f"{cpu_model()}, {len(os.sched_getaffinity(0))} CPUs, torch {torch.__version__}, "
        f"{threads or torch.get_num_threads()} threads"
    )


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine']}. Generator: U-Net, {results['features']} features, "
        f"n_downs {results['n_downs']} ({results['params'] / 1e6:.1f}M parameters), fp32, eval.",
        "",
        "| backend | image | mode | seconds | peak MiB (image) | estimate MiB (one pass) | choice printed |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['backend']} | {row['size']} | {row['mode']} | {row['seconds']:.1f} | "
            f"{row['peak_mib']:.0f} | {row['estimate_mib']:.0f} | {row['note'] or '-'} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--n-downs", type=int, default=8)
    p.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT of the large image")
    p.add_argument("--budget", default="1G", help="memory budget of the tiled rows")
    p.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--no-calibration", action="store_true", help="skip the smaller one-pass rows")
    p.add_argument("--quick", action="store_true", help="smoke run: small model and image")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--image", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--onnx", help=argparse.SUPPRESS)
    p.add_argument("--budget-bytes", dest="budget_bytes", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.quick:
        args.features, args.n_downs, args.size, args.budget = 8, 5, "600x400", "20M"
        args.no_calibration = True
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child_main(args)
        return
    from nectargan.inference.memory import parse_size

    budget = parse_size(args.budget)
    generator, _ = build(args.features, args.n_downs)
    results: dict[str, Any] = {
        "machine": machine(args.threads),
        "features": args.features,
        "n_downs": args.n_downs,
        "params": sum(p.numel() for p in generator.parameters()),
        "budget": args.budget,
        "rows": [],
    }
    del generator
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        args.onnx_path = export(args, workdir) if "onnxruntime" in args.backends else None
        sizes = ([] if args.no_calibration else list(CALIBRATION_SIZES)) + [args.size]
        for size in sizes:
            image = workdir / f"{size}.png"
            write_image(image, parse_hw(size))
            for backend in args.backends:
                modes = [("one pass", None)] + ([("tiled", budget)] if size == args.size else [])
                for mode, case_budget in modes:
                    row = run_case(args, backend, image, case_budget, workdir)
                    row |= {"backend": backend, "size": size, "mode": mode}
                    results["rows"].append(row)
                    print(
                        f"{backend} {size} {mode}: {row['seconds']:.1f} s, {row['peak_mib']:.0f} MiB",
                        file=sys.stderr,
                    )
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
