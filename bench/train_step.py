"""Our Pix2pix training step against the plain fp32 PyTorch loop anyone would write.

Run: ``PYTHONPATH=. .venv/bin/python bench/train_step.py`` (``--quick`` for a
smoke run, ``--batch 1 4`` for the batch sizes, ``--breakdown`` for the
intermediate variants, ``--compile`` for ``train.compile``, ``--visualizer``
for the dashboard's cost, ``--sanity`` for bf16 vs fp32 learning, ``--all``).

Timing: every variant lives in this one process and runs in short blocks,
round after round in rotating order, so drift in machine load (other jobs on
a shared 2-core box) hits all variants alike. The headline ratio is the
median over rounds of (our block mean / direct block mean): a paired
statistic, robust to slow minutes. Peak memory: each variant trains again in
a child process of its own that reports ``ru_maxrss``, because one process
holding every variant cannot tell whose pages made the peak.

The baseline ("direct") is the pix2pix reference step written the most direct
way with our own ``UnetGenerator`` / ``PatchGANDiscriminator`` classes: fp32,
contiguous tensors, ``torch.optim.Adam`` with default options, ``zero_grad()``,
``nn.BCEWithLogitsLoss`` + 100 x ``nn.L1Loss``, D frozen during G's backward
as the reference does. Ours is ``Pix2pixTrainer.train_step`` with the default
config (LossManager recording, a display step every 50 included).
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

import torch
from _common import visdom_server, vm_hwm_kib
from torch import Tensor, nn

from nectargan.dataset import generate_synthetic_dataset
from nectargan.models import PatchGANDiscriminator, UnetGenerator
from nectargan.trainers import Pix2pixTrainer
from nectargan.trainers.precision import cpu_supports_bf16

SECTION = "## Training step (bench/train_step.py)"
VARIANTS: dict[str, dict[str, Any]] = {
    "direct": {},  # not a trainer: the plain loop below
    "ours": {},  # the default config
    "ours-fp32": {"train.mixed_precision": "off"},
    "ours-channels-last": {"train.channels_last": True},
    "ours-compile": {"train.compile": True},
}
Step = Callable[[Tensor, Tensor], None]


# -- the two steps ----------------------------------------------------------------------


def direct_step(
    batch: int, size: int, device: str | torch.device = "cpu", nets: dict[str, dict] | None = None
) -> Step:
    """The baseline: the reference pix2pix step, fp32, written the obvious way.

    ``nets``: ``{"generator": kwargs, "discriminator": kwargs}`` for smaller networks
    (bench/gpu_check.py --quick); the default networks otherwise.
    """
    nets = nets or {}
    gen = UnetGenerator(**nets.get("generator", {})).to(device)
    disc = PatchGANDiscriminator(**nets.get("discriminator", {})).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()

    def step(x: Tensor, y: Tensor) -> None:
        fake = gen(x)
        opt_d.zero_grad()
        pred_real, pred_fake = disc(x, y), disc(x, fake.detach())
        loss_d = 0.5 * (
            bce(pred_real, torch.ones_like(pred_real)) + bce(pred_fake, torch.zeros_like(pred_fake))
        )
        loss_d.backward()
        opt_d.step()
        disc.requires_grad_(False)
        opt_g.zero_grad()
        pred_fake = disc(x, fake)
        loss_g = bce(pred_fake, torch.ones_like(pred_fake)) + 100.0 * l1(fake, y)
        loss_g.backward()
        opt_g.step()
        disc.requires_grad_(True)

    return step


def tiny_dataroot(workdir: Path) -> Path:
    """The trainer wants a dataset to exist; the timed step never reads it."""
    return generate_synthetic_dataset(workdir / "data", n=10, size=64)


def trainer_config(workdir: Path, batch: int, size: int, overrides: dict[str, Any]) -> dict:
    cfg: dict[str, Any] = {
        "common": {"output_directory": str(workdir / "out")},
        "dataloader": {
            "dataroot": str(tiny_dataroot(workdir)),
            "load_size": size,
            "crop_size": size,
            "batch_size": batch,
        },
        "visualizer": {"visdom": {"enable": False}},
    }
    for dotted, value in overrides.items():
        *path, key = dotted.split(".")
        node = cfg
        for part in path:
            node = node.setdefault(part, {})
        node[key] = value
    return cfg


class OursStep:
    """``Pix2pixTrainer.train_step`` fed the way ``Trainer._run_batches`` feeds it."""

    def __init__(self, workdir: Path, batch: int, size: int, overrides: dict[str, Any]) -> None:
        cfg = trainer_config(workdir, batch, size, overrides)
        self.trainer = Pix2pixTrainer(cfg, quicksetup=False)
        self.trainer.batches_per_epoch = 10**6
        self.trainer.on_epoch_start()
        self.idx = 0

    def __call__(self, x: Tensor, y: Tensor) -> None:
        t = self.trainer
        x = x.to(t.device, memory_format=t.memory_format, non_blocking=True)
        y = y.to(t.device, memory_format=t.memory_format, non_blocking=True)
        t.train_step(x, y, self.idx)
        t.progress.step_done()
        self.idx += 1


def make_variant(name: str, workdir: Path, batch: int, size: int) -> Step:
    torch.manual_seed(0)
    if name == "direct":
        return direct_step(batch, size)
    return OursStep(workdir / name, batch, size, VARIANTS[name])


def inputs(batch: int, size: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    return (
        torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
        torch.rand(batch, 3, size, size, generator=g) * 2 - 1,
    )


# -- timing -----------------------------------------------------------------------------


def timed(step: Step, x: Tensor, y: Tensor, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        step(x, y)
        out.append(time.perf_counter() - t0)
    return out


def alternate(
    steps: dict[str, Step], x: Tensor, y: Tensor, rounds: int, block: int
) -> dict[str, list[list[float]]]:
    """``rounds`` x (``block`` steps of each variant), order rotated every round."""
    names = list(steps)
    times: dict[str, list[list[float]]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(timed(steps[name], x, y, block))
        line = "  ".join(f"{n} {statistics.mean(times[n][-1]):.3f}" for n in names)
        print(f"  round {r + 1}/{rounds}: {line} s/step", file=sys.stderr, flush=True)
    return times


def summarize(times: dict[str, list[list[float]]], batch: int) -> dict[str, dict[str, float]]:
    base_blocks = [statistics.mean(b) for b in times["direct"]]
    out = {}
    for name, blocks in times.items():
        flat = [t for b in blocks for t in b]
        means = [statistics.mean(b) for b in blocks]
        median = statistics.median(flat)
        out[name] = {
            "s_per_step": median,
            "images_per_s": batch / median,
            "paired_ratio": statistics.median(
                m / b for m, b in zip(means, base_blocks, strict=True)
            ),
            "ratio_of_medians": median / statistics.median(t for b in times["direct"] for t in b),
            "ratio_of_p25": p25(flat) / p25([t for b in times["direct"] for t in b]),
            "blocks": blocks,
        }
    return out


def p25(values: list[float]) -> float:
    """First quartile: other jobs on the machine only ever add time, so the fast
    quarter of the steps is the least disturbed view of each variant."""
    return statistics.quantiles(values, n=4)[0] if len(values) > 1 else values[0]


def run_timing(args: argparse.Namespace, batch: int, workdir: Path) -> dict[str, Any]:
    x, y = inputs(batch, args.size)
    steps: dict[str, Step] = {}
    compile_s = None
    for name in args.variants:
        steps[name] = make_variant(name, workdir / f"b{batch}", batch, args.size)
        t0 = time.perf_counter()
        timed(steps[name], x, y, args.warmup)
        if name == "ours-compile":  # the first steps compile; report that cost apart
            compile_s = time.perf_counter() - t0
    print(f"batch {batch}:", file=sys.stderr, flush=True)
    times = alternate(steps, x, y, args.rounds, args.block)
    result: dict[str, Any] = {"timing": summarize(times, batch)}
    if compile_s is not None:
        result["compile_warmup_s"] = compile_s
    return result


# -- peak memory: one child process per variant ------------------------------------------


def child_main(args: argparse.Namespace) -> None:
    """Train ``args.child`` alone for a few steps and report this process's peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        batch = args.batch[0]
        step = make_variant(args.child, Path(tmp), batch, args.size)
        x, y = inputs(batch, args.size)
        times = timed(step, x, y, args.child_steps)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {"variant": args.child, "peak_rss_mb": peak_kib / 1024, "times": times}
    print(json.dumps({**report, "vm_hwm_mb": vm_hwm_kib() / 1024}))


def peak_rss(name: str, batch: int, args: argparse.Namespace) -> float:
    """Peak RSS of a child training ``name`` alone.

    Linux carries ``ru_maxrss`` over fork and exec, so children are started
    while this process is still small (before any model is built here).
    """
    cmd = [sys.executable, __file__, "--child", name, "--batch", str(batch)]
    cmd += ["--size", str(args.size), "--child-steps", str(args.child_steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mb"]


# -- the dashboard's cost ----------------------------------------------------------------


def run_visualizer(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Blocks of ``every`` steps with the dashboard on (threaded) or off, alternating.

    Each block holds exactly one display step. The thread runs throughout;
    "off" detaches it from the trainer, so only the updates themselves differ.
    """
    from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

    every, batch = 40, 1
    with visdom_server(workdir) as port:
        vis = VisdomVisualizer(env="bench_train_step", server="http://127.0.0.1", port=port)
        step = OursStep(workdir / "vis", batch, args.size, {})
        step.trainer.update_frequency = every
        x, y = inputs(batch, args.size)
        timed(step, x, y, args.warmup)
        step.idx = 0
        vis.start_thread()
        try:
            times = _vis_blocks(step, vis, x, y, every, args.vis_rounds)
        finally:
            vis.stop_thread()
    on = [statistics.mean(b) for b in times["on"]]
    off = [statistics.mean(b) for b in times["off"]]
    return {
        "every": every,
        "steps_per_mode": sum(len(b) for b in times["on"]),
        "s_per_step_on": statistics.mean(on),
        "s_per_step_off": statistics.mean(off),
        "paired_change": statistics.median(a / b - 1 for a, b in zip(on, off, strict=True)),
        "mean_change": statistics.mean(on) / statistics.mean(off) - 1,
    }


def _vis_blocks(
    step: OursStep, vis: Any, x: Tensor, y: Tensor, every: int, rounds: int
) -> dict[str, list[list[float]]]:
    times: dict[str, list[list[float]]] = {"on": [], "off": []}
    for r in range(rounds):
        for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
            step.trainer.vis = vis if mode == "on" else None
            times[mode].append(timed(step, x, y, every))
        on, off = statistics.mean(times["on"][-1]), statistics.mean(times["off"][-1])
        print(f"  vis round {r + 1}/{rounds}: on {on:.3f} off {off:.3f}", file=sys.stderr)
    return times


# -- numerical sanity: does bf16 learn like fp32? ----------------------------------------


def run_sanity(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Demo config (64 px synthetic data), fixed steps, test-split L1: bf16 vs fp32."""
    from nectargan.trainers.evaluate import eval_dataset, evaluate_generator, untrained_baseline

    out: dict[str, Any] = {"epochs": args.sanity_epochs, "seeds": args.seeds, "l1": {}}
    for seed in range(args.seeds):
        for mode in ("off", "bf16"):
            cfg = {
                "common": {
                    "output_directory": str(workdir / "sanity"),
                    "experiment_name": f"{mode}_s{seed}",
                    "seed": seed,
                },
                "train": {"mixed_precision": mode, "epochs": args.sanity_epochs, "epochs_decay": 0},
                "save": {"model_save_rate": 0, "example_save_rate": 0, "log_losses": False},
                "visualizer": {"visdom": {"enable": False}},
            }
            trainer = Pix2pixTrainer(_demo_with(cfg))
            trainer.fit()
            test_set = eval_dataset(trainer.config, "test")
            l1 = evaluate_generator(trainer.gen, test_set)["metrics"]["l1"]
            out["l1"].setdefault(mode, []).append(l1)
            out["steps"] = trainer.global_step
            if "untrained" not in out:
                out["untrained"] = untrained_baseline(trainer.config, test_set)["l1"]
            print(f"  sanity seed {seed} {mode}: test L1 {l1:.4f}", file=sys.stderr, flush=True)
    fp32, bf16 = (statistics.mean(out["l1"][m]) for m in ("off", "bf16"))
    out["relative_diff"] = bf16 / fp32 - 1
    return out


def _demo_with(overrides: dict[str, Any]) -> dict[str, Any]:
    import nectargan.config

    demo = json.loads((Path(nectargan.config.__file__).parent / "demo.json").read_text())

    def merge(a: dict, b: dict) -> dict:
        return {
            **a,
            **{k: merge(a.get(k, {}), v) if isinstance(v, dict) else v for k, v in b.items()},
        }

    return merge(demo, overrides)


# -- report -------------------------------------------------------------------------------


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}, "
        f"native bf16: {cpu_supports_bf16()}, python {platform.python_version()}"
    )


def markdown(results: dict[str, Any]) -> str:
    lines = [f"Machine: {results['machine']}", ""]
    for batch, res in results.get("batches", {}).items():
        lines += [
            f"Batch {batch}, {results['size']}x{results['size']}:",
            "",
            "| variant | s/step (median) | images/s | ratio vs direct (paired) "
            "| ratio of medians | ratio of p25 | peak RSS (MB) |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, t in res["timing"].items():
            rss = res.get("peak_rss_mb", {}).get(name)
            lines.append(
                f"| {name} | {t['s_per_step']:.3f} | {t['images_per_s']:.2f} "
                f"| {t['paired_ratio']:.3f} | {t['ratio_of_medians']:.3f} "
                f"| {t['ratio_of_p25']:.3f} "
                f"| {'-' if rss is None else f'{rss:.0f}'} |"
            )
        if "compile_warmup_s" in res:
            lines.append(
                f"\n`torch.compile` warm-up (compile + first steps): {res['compile_warmup_s']:.1f} s"
            )
        lines.append("")
    if "visualizer" in results:
        v = results["visualizer"]
        lines.append(
            f"Visualizer (threaded, update every {v['every']} steps, {v['steps_per_mode']} steps "
            f"per mode): {v['s_per_step_on']:.3f} vs {v['s_per_step_off']:.3f} s/step, "
            f"change {v['paired_change'] * 100:+.2f}% (paired median), "
            f"{v['mean_change'] * 100:+.2f}% (means)"
        )
        lines.append("")
    if "sanity" in results:
        s = results["sanity"]
        fp32, bf16 = (statistics.mean(s["l1"][m]) for m in ("off", "bf16"))
        lines.append(
            f"Sanity ({s['steps']} steps x {s['seeds']} seed(s)): test L1 untrained "
            f"{s['untrained']:.4f}, fp32 {fp32:.4f} {s['l1']['off']}, bf16 {bf16:.4f} "
            f"{s['l1']['bf16']}, bf16 vs fp32 {s['relative_diff'] * 100:+.2f}%"
        )
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--block", type=int, default=2, help="steps per variant per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="a smoke run: few steps everywhere")
    p.add_argument("--breakdown", action="store_true", help="add ours-fp32, ours-channels-last")
    p.add_argument("--compile", action="store_true", help="add ours-compile (train.compile)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-RSS children")
    p.add_argument("--no-timing", action="store_true", help="skip the step timing")
    p.add_argument("--visualizer", action="store_true", help="dashboard on vs off")
    p.add_argument("--vis-rounds", type=int, default=6)
    p.add_argument("--sanity", action="store_true", help="bf16 vs fp32 test L1")
    p.add_argument("--sanity-epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--all", action="store_true", help="timing, memory, visualizer, sanity")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument(
        "--nproc", type=int, help="instead: throughput with 1 vs N processes (bench/distributed.py)"
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--child-steps", type=int, default=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    args.variants = ["direct", "ours"]
    args.variants += ["ours-fp32", "ours-channels-last"] if args.breakdown else []
    args.variants += ["ours-compile"] if args.compile else []
    if args.all:
        args.visualizer = args.sanity = True
    if args.quick:
        args.rounds, args.block, args.warmup, args.child_steps = 2, 1, 1, 2
        args.vis_rounds, args.sanity_epochs, args.seeds = 2, 1, 1
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        child_main(args)
        return
    if args.nproc:
        run_distributed(args.nproc)
        return
    results: dict[str, Any] = {"machine": machine(), "size": args.size, "batches": {}}
    batches = [] if args.no_timing else args.batch
    for batch in [] if args.no_memory else batches:  # first: see peak_rss()
        rss = {n: peak_rss(n, batch, args) for n in args.variants}
        results["batches"][batch] = {"peak_rss_mb": rss}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for batch in batches:
            res = results["batches"].setdefault(batch, {})
            res.update(run_timing(args, batch, workdir))
        if args.visualizer:
            results["visualizer"] = run_visualizer(args, workdir)
        if args.sanity:
            results["sanity"] = run_sanity(args, workdir)
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def run_distributed(nproc: int) -> None:
    """``--nproc N``: the multi-process comparison lives in its own script; run it."""
    script = Path(__file__).with_name("distributed.py")
    subprocess.run([sys.executable, str(script), "--nproc", str(nproc)], check=True)


if __name__ == "__main__":
    main()
