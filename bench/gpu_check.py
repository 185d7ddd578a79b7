"""One prepared command that proves the GPU path and reports everything at once.

Run: ``PYTHONPATH=. python bench/gpu_check.py --out DIR`` on a CUDA machine (about
4-7 minutes), or ``--device cpu --quick`` for the same code paths on CPU with small
networks (under 2 minutes; tests/test_gpu_check.py runs it). Writes
``DIR/gpu_check.json`` and ``DIR/gpu_check.md`` (tables for docs/benchmarks.md).

Parts, each in a child process of its own with its own time budget (a hang in
CUDA, nccl or the compiler is killed, and the child's partial results are kept);
a part that fails or runs out of time is recorded and the others still run:

1. ``environment``: GPU, driver, CUDA, cuDNN, torch, onnxruntime versions.
2. ``train_step``: ``Pix2pixTrainer.train_step`` in fp32, bf16 and fp16 (one
   GradScaler per network), each with and without channels_last, beside
   bench/train_step.py's plain fp32 loop ("direct") in the same process, batch 1
   and 16: s/step, images/s, peak memory, the paired ratio; and whether
   ``train.mixed_precision=auto`` picks the fastest.
3. ``compile``: the fastest of part 2 again with ``train.compile``.
4. ``fit``: ``Trainer.fit()``, 2 short epochs on the synthetic set, dashboard on (a
   loopback Visdom server) and off: images/s, finite losses, checkpoint, resume.
5. ``ddp``: one epoch under torchrun with one rank, forced onto the distributed
   path (``NECTARGAN_FORCE_DDP=1``): nccl on CUDA, gloo on CPU.
6. ``inference``: eager fp32 and fp16 against the exported ONNX on onnxruntime's
   CUDAExecutionProvider (recorded as not available when it is missing), batch 1
   and 8, outputs compared with a CPU fp32 reference at the export tolerance.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gpu_parts

PARTS: dict[str, float] = {  # name -> time budget in seconds (the sum stays under 8 minutes)
    "environment": 20,
    "train_step": 110,
    "compile": 100,
    "fit": 75,
    "ddp": 50,
    "inference": 70,
}


def part_file(out: Path, name: str) -> Path:
    return out / "parts" / f"{name}.json"


def run_part(name: str, args: argparse.Namespace, budget: float, fastest: str | None) -> dict:
    """``name`` in a child process of its own session, killed (whole group) at ``budget``."""
    cmd = [
        sys.executable,
        __file__,
        "--part",
        name,
        "--device",
        args.device,
        "--out",
        str(args.out),
    ]
    cmd += ["--quick"] if args.quick else []
    cmd += ["--fastest", fastest] if fastest else []
    cmd += ["--inject-fault", args.inject_fault] if args.inject_fault == name else []
    log = args.out / "logs" / f"{name}.log"
    started = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=budget)
            status = "ok" if rc == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun's ranks and compile workers too
            proc.wait()
            status, rc = "timeout", None
    record: dict[str, Any] = {
        "status": status,
        "seconds": round(time.monotonic() - started, 1),
        "budget_s": budget,
        "exit_code": rc,
        "log": str(log),
    }
    try:
        record["result"] = json.loads(part_file(args.out, name).read_text())
    except (OSError, ValueError):
        record["result"] = {}
    if status != "ok":
        lines = log.read_text(errors="replace").splitlines()
        record["error"] = "\n".join(lines[-15:]) or f"{status} with no output"
    return record


def problems(parts: dict[str, dict]) -> list[str]:
    """Every part that did not finish and every item inside one that failed."""
    out = []
    for name, rec in parts.items():
        if rec["status"] != "ok":
            out.append(f"{name}: {rec['status']}")
        for key, value in gpu_parts.walk_errors(rec.get("result", {})):
            out.append(f"{name}: {key}: {value}")
    return out


def orchestrate(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "parts").mkdir(exist_ok=True)
    (args.out / "logs").mkdir(exist_ok=True)
    report: dict[str, Any] = {"device": args.device, "quick": args.quick, "parts": {}}
    started = time.monotonic()
    for name in args.parts:
        budget = args.budget.get(name, PARTS[name])
        fastest = gpu_parts.fastest_variant(report["parts"].get("train_step", {}).get("result"))
        print(f"gpu_check: {name} (budget {budget:.0f} s)...", file=sys.stderr, flush=True)
        rec = run_part(name, args, budget, fastest)
        report["parts"][name] = rec
        print(f"gpu_check: {name}: {rec['status']} in {rec['seconds']} s", file=sys.stderr)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["problems"] = problems(report["parts"])
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    (args.out / "gpu_check.md").write_text(gpu_parts.markdown(report))
    print(gpu_parts.markdown(report))
    return 0 if not report["problems"] else 1


def run_child(args: argparse.Namespace) -> None:
    """One part, writing its results to ``parts/NAME.json`` after every item."""
    path = part_file(args.out, args.part)
    result: dict[str, Any] = {}

    def save() -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=2, default=_finite))
        tmp.replace(path)

    if args.inject_fault == args.part:
        save()
        raise RuntimeError(f"fault injected into part {args.part!r} (--inject-fault)")
    device = gpu_parts.torch.device(args.device)
    if device.type == "cuda" and device.index is not None:
        gpu_parts.torch.cuda.set_device(device)  # memory counters and autocast follow it
    with tempfile.TemporaryDirectory() as tmp:
        ctx = gpu_parts.Context(args.device, args.quick, Path(tmp), args.fastest, result, save)
        getattr(gpu_parts, f"part_{args.part}")(ctx)
    save()


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else str(value)


def budget_arg(text: str) -> tuple[str, float]:
    name, _, seconds = text.partition("=")
    if name not in PARTS or not seconds:
        raise argparse.ArgumentTypeError(f"expected PART=SECONDS with PART in {list(PARTS)}")
    try:
        value = float(seconds)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"budget for {name}: expected seconds > 0, got {seconds!r}"
        )
    return name, value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json/.md")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--quick", action="store_true", help="small networks and few steps")
    p.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    p.add_argument(
        "--budget", type=budget_arg, action="append", default=[], help="PART=SECONDS, repeatable"
    )
    p.add_argument("--inject-fault", choices=list(PARTS), help=argparse.SUPPRESS)
    p.add_argument("--part", choices=list(PARTS), help=argparse.SUPPRESS)
    p.add_argument("--fastest", help=argparse.SUPPRESS)
    p.add_argument("--ddp-worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.budget = dict(args.budget)
    if args.device != "cpu" and not args.device.startswith("cuda"):
        p.error(f"--device: expected cuda, cuda:N or cpu, got {args.device!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.ddp_worker:
        gpu_parts.ddp_worker(json.loads(args.ddp_worker))
        return 0
    if args.part:
        run_child(args)
        return 0
    if args.device.startswith("cuda") and not gpu_parts.torch.cuda.is_available():
        print(
            f"gpu_check: error: --device {args.device} but this torch "
            f"({gpu_parts.torch.__version__}) sees no CUDA device; install a CUDA build "
            "(docs/benchmarks.md) or use --device cpu",
            file=sys.stderr,
        )
        return 2
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
