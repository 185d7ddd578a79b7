"""The parts bench/gpu_check.py runs, each in a child process of its own.

Every part fills ``ctx.result`` item by item and calls ``ctx.save()`` after each, so a
part killed at its time budget still reports what it finished. An item that fails is
recorded as ``{"error": ...}`` and the part goes on with the next one.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from _common import cpu_model, free_port, visdom_server
from train_step import OursStep, alternate, direct_step, inputs, summarize, timed

QUICK_NETS = {"generator": {"features": 8, "n_downs": 6}, "discriminator": {"base_channels": 8}}
PRECISIONS = ("off", "bf16", "fp16")  # train.mixed_precision values, fp32 first


@dataclass
class Context:
    device: str
    quick: bool
    workdir: Path
    fastest: str | None
    result: dict[str, Any]
    save: Callable[[], None]

    @property
    def size(self) -> int:
        return 64 if self.quick else 256

    @property
    def train_batches(self) -> tuple[int, ...]:
        return (1, 2) if self.quick else (1, 16)

    @property
    def nets(self) -> dict[str, dict]:
        return QUICK_NETS if self.quick else {}

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def overrides(self) -> dict[str, Any]:
        """Config keys every trainer here gets: the device and (quick) the small networks."""
        out: dict[str, Any] = {"common.device": self.device}
        for section, kwargs in self.nets.items():
            out |= {f"train.{section}.{k}": v for k, v in kwargs.items()}
        return out

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def attempt(self, key: str, fn: Callable[[], Any]) -> None:
        """``result[key] = fn()``, or the error; saved either way."""
        try:
            self.result[key] = fn()
        except Exception as exc:  # recorded, and the part goes on
            traceback.print_exc()
            self.result[key] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        self.save()


def walk_errors(node: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "error":
                yield prefix or "(part)", str(value)
            else:
                yield from walk_errors(value, f"{prefix}.{key}" if prefix else str(key))


def variant_name(precision: str, channels_last: bool) -> str:
    return {"off": "fp32"}.get(precision, precision) + ("+cl" if channels_last else "")


def variant_overrides(name: str) -> dict[str, Any]:
    precision, _, cl = name.partition("+")
    return {
        "train.mixed_precision": {"fp32": "off"}.get(precision, precision),
        "train.channels_last": bool(cl),
    }


def fastest_variant(train_result: dict | None) -> str | None:
    """The fastest variant of the largest batch in a ``train_step`` result."""
    batches = [v for k, v in (train_result or {}).items() if k.startswith("batch_")]
    if not batches or "timing" not in batches[-1]:
        return None
    timing = {k: v for k, v in batches[-1]["timing"].items() if k != "direct"}
    return min(timing, key=lambda k: timing[k]["s_per_step"]) if timing else None


# -- 1. environment ---------------------------------------------------------------------


def part_environment(ctx: Context) -> None:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "cuda_available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda,
    }
    if ctx.cuda:
        index = torch.device(ctx.device).index or 0
        props = torch.cuda.get_device_properties(index)
        env |= {
            "gpu": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "cudnn": torch.backends.cudnn.version(),
            "bf16_supported": torch.cuda.is_bf16_supported(),
            "nccl": _nccl_version(),
            "driver": _nvidia_smi("driver_version"),
        }
    try:
        import onnxruntime as ort

        env |= {"onnxruntime": ort.__version__, "ort_providers": ort.get_available_providers()}
    except ImportError as exc:
        env["onnxruntime"] = f"not installed ({exc})"
    ctx.result.update(env)


def _nccl_version() -> str:
    try:
        version = torch.cuda.nccl.version()  # a tuple in torch 2.x, an int in older ones
    except Exception as exc:  # a build without nccl
        return f"unavailable ({exc})"
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def _nvidia_smi(field: str) -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 else out.stderr.strip()
    except (OSError, IndexError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"


# -- 2. and 3. training step --------------------------------------------------------------


def _synced(ctx: Context, step: Callable) -> Callable:
    def run(x: torch.Tensor, y: torch.Tensor) -> None:
        step(x, y)
        ctx.sync()

    return run


def _build(
    ctx: Context, name: str, batch: int, extra: dict[str, Any]
) -> tuple[Callable, dict[str, Any]]:
    """A variant's step, warmed up; with the peak memory its building and warm-up took."""
    torch.manual_seed(0)
    if ctx.cuda:
        ctx.sync()
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if ctx.cuda else 0
    if name == "direct":
        step = direct_step(batch, ctx.size, ctx.device, ctx.nets)
    else:
        cfg = ctx.overrides() | variant_overrides(name) | extra
        step = OursStep(ctx.workdir / f"{name}_b{batch}", batch, ctx.size, cfg)
    step = _synced(ctx, step)
    x, y = (t.to(ctx.device) for t in inputs(batch, ctx.size))
    started = time.perf_counter()
    timed(step, x, y, 1 if ctx.quick else 3)
    warmup_s = time.perf_counter() - started
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if ctx.cuda else None
    return step, {"peak_mem_mib": peak, "warmup_s": warmup_s}


def _time_batch(ctx: Context, batch: int, names: list[str], extra: dict[str, Any]) -> dict:
    """Build every variant (skipping the impossible ones), then alternate them in rounds."""
    out: dict[str, Any] = {"skipped": {}, "errors": {}}
    steps, figures = {}, {}
    for name in names:
        if name.startswith("fp16") and not ctx.cuda:
            out["skipped"][name] = "fp16 with GradScaler is a CUDA path"
            continue
        try:
            extra_here = {} if name == "direct" else extra
            steps[name], figures[name] = _build(ctx, name, batch, extra_here)
        except Exception as exc:
            traceback.print_exc()
            out["errors"][name] = f"{type(exc).__name__}: {exc}"[:400]
    if "direct" not in steps or len(steps) < 2:
        out["error"] = f"too few variants built to compare: {sorted(steps)}"
        return out
    x, y = (t.to(ctx.device) for t in inputs(batch, ctx.size))
    rounds, block = (2, 1) if ctx.quick else (8, 3)
    out["timing"] = summarize(alternate(steps, x, y, rounds, block), batch)
    for name, t in out["timing"].items():
        t.pop("blocks", None)
        t.update(figures[name])
    del steps
    if ctx.cuda:
        torch.cuda.empty_cache()
    return out


def part_train_step(ctx: Context) -> None:
    from nectargan.config import Config
    from nectargan.trainers.builders import memory_format
    from nectargan.trainers.precision import resolve_precision

    names = ["direct"] + [variant_name(p, cl) for p in PRECISIONS for cl in (False, True)]
    for batch in ctx.train_batches:
        ctx.attempt(f"batch_{batch}", lambda b=batch: _time_batch(ctx, b, names, {}))
    device = torch.device(ctx.device)
    auto = variant_name(
        resolve_precision("auto", device).name.replace("fp32", "off"),
        memory_format(Config.load(None), device) == torch.channels_last,
    )
    fastest = fastest_variant(ctx.result)
    ctx.result["auto"] = {"picks": auto, "fastest": fastest, "auto_is_fastest": auto == fastest}


def part_compile(ctx: Context) -> None:
    name = ctx.fastest or "fp32"
    ctx.result["variant"] = name
    if ctx.quick and not ctx.cuda:  # measured: 260 s to compile the tiny networks on 2 cores
        ctx.result["skipped"] = "torch.compile on CPU takes minutes; run without --quick"
        return
    for batch in sorted(ctx.train_batches, reverse=True):  # the large batch matters most
        ctx.attempt(
            f"batch_{batch}",
            lambda b=batch: _time_batch(ctx, b, ["direct", name], {"train.compile": True}),
        )


# -- 4. fit ------------------------------------------------------------------------------


def _fit_config(ctx: Context, dataroot: Path, name: str, port: int | None) -> dict:
    from train_step import trainer_config

    cfg = trainer_config(ctx.workdir, 1 if ctx.quick else 4, ctx.size, ctx.overrides())
    cfg["dataloader"]["dataroot"] = str(dataroot)
    cfg["common"]["experiment_name"] = name
    cfg["train"] |= {"epochs": 2, "epochs_decay": 0}
    cfg["visualizer"]["visdom"] = {
        "enable": port is not None,
        "port": port or 8097,
        "server": "http://127.0.0.1",
        "env_name": f"gpu_check_{name}",
        "update_frequency": 5,
        "autostart": False,
    }
    return cfg


def _fit_once(ctx: Context, dataroot: Path, name: str, port: int | None) -> dict[str, Any]:
    from nectargan.trainers import Pix2pixTrainer
    from nectargan.trainers.timing import read_timing

    trainer = Pix2pixTrainer(_fit_config(ctx, dataroot, name, port))
    trainer.fit()
    trainer.close()
    exp = trainer.experiment_dir
    last = read_timing(exp)[-1]
    batch = trainer.config.dataloader.batch_size
    losses = dict(trainer.last_losses)
    return {
        "experiment": str(exp),
        "images_per_s_epoch2": last["steps"] * batch / last["seconds"],
        "losses": losses,
        "losses_finite": bool(losses) and all(math.isfinite(v) for v in losses.values()),
        "checkpoint": (exp / "checkpoints" / "epoch_0002.pt").is_file(),
    }


def _resume(ctx: Context, exp: str) -> dict[str, Any]:
    """The CLI's resume, one more epoch: what a user would run after a stop."""
    cmd = [sys.executable, "-m", "nectargan", "train", "--resume", exp, "--epochs", "3"]
    res = subprocess.run(cmd + ["--no-visdom"], capture_output=True, text=True, timeout=300)
    ok = res.returncode == 0 and (Path(exp) / "checkpoints" / "epoch_0003.pt").is_file()
    out: dict[str, Any] = {"exit_code": res.returncode, "epoch_3_checkpoint": ok}
    if not ok:
        out["error"] = res.stderr.strip()[-500:]
    return out


def part_fit(ctx: Context) -> None:
    from nectargan.dataset import generate_synthetic_dataset

    n = 16 if ctx.quick else 80
    dataroot = generate_synthetic_dataset(ctx.workdir / "synth", n=n, size=ctx.size)
    with visdom_server(ctx.workdir / "visdom") as port:
        ctx.attempt("dashboard_on", lambda: _fit_once(ctx, dataroot, "on", port))
    ctx.attempt("dashboard_off", lambda: _fit_once(ctx, dataroot, "off", None))
    on, off = ctx.result.get("dashboard_on", {}), ctx.result.get("dashboard_off", {})
    if "images_per_s_epoch2" in on and "images_per_s_epoch2" in off:
        ctx.result["dashboard_change"] = on["images_per_s_epoch2"] / off["images_per_s_epoch2"] - 1
    if "experiment" in off:
        ctx.attempt("resume", lambda: _resume(ctx, off["experiment"]))


# -- 5. DDP with one rank ------------------------------------------------------------------


def part_ddp(ctx: Context) -> None:
    from nectargan.dataset import generate_synthetic_dataset

    dataroot = generate_synthetic_dataset(ctx.workdir / "synth", n=16, size=ctx.size)
    cfg = _fit_config(ctx, dataroot, "ddp", None)
    cfg["train"] |= {"epochs": 1}
    report = ctx.workdir / "ddp_report.json"
    worker = {"config": cfg, "report": str(report)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    cmd += [str(Path(__file__).with_name("gpu_check.py")), "--out", str(ctx.workdir)]
    cmd += ["--ddp-worker", json.dumps(worker)]
    env = os.environ | {"NECTARGAN_FORCE_DDP": "1", "MASTER_PORT": str(free_port())}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    ctx.result["exit_code"] = res.returncode
    if res.returncode != 0 or not report.is_file():
        ctx.result["error"] = res.stderr.strip()[-800:] or "the worker wrote no report"
        return
    ctx.result.update(json.loads(report.read_text()))


def ddp_worker(spec: dict[str, Any]) -> None:
    """One rank under torchrun: a real fit of one epoch through the distributed path."""
    import torch.distributed as dist

    from nectargan.trainers import Pix2pixTrainer

    trainer = Pix2pixTrainer(spec["config"])
    started = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - started
    report = {
        "backend": trainer.procs.backend,
        "world_size": trainer.world_size,
        "ddp_wrapped": type(trainer.gen_fwd).__name__,
        "epochs_completed": trainer.epochs_completed,
        "fit_seconds": seconds,
        "losses_finite": all(math.isfinite(v) for v in trainer.last_losses.values()),
        "checkpoint": (trainer.experiment_dir / "checkpoints" / "epoch_0001.pt").is_file(),
    }
    trainer.close()
    Path(spec["report"]).write_text(json.dumps(report))
    if dist.is_initialized():
        dist.destroy_process_group()


# -- 6. inference ---------------------------------------------------------------------------


def part_inference(ctx: Context) -> None:
    from nectargan.config import Config
    from nectargan.inference.model_info import ModelInfo
    from nectargan.onnx.converter import export_onnx
    from nectargan.onnx.selfcheck import FP32_TOLERANCE
    from nectargan.trainers.builders import build_generator

    config = Config.load(None).with_overrides(
        {k: v for k, v in ctx.overrides().items() if k.startswith("train.generator")}
        | {"dataloader.crop_size": ctx.size, "dataloader.load_size": ctx.size}
    )
    torch.manual_seed(0)
    reference = build_generator(config).eval()  # CPU fp32: the export's own reference
    path = ctx.workdir / "generator.onnx"
    ctx.attempt("export", lambda: export_onnx(reference, ModelInfo.from_config(config), path))
    session = _ort_session(ctx, path) if path.is_file() else None
    gen = build_generator(config).eval().to(ctx.device)
    gen.load_state_dict(reference.state_dict())
    for batch in (1, 2) if ctx.quick else (1, 8):
        ctx.attempt(
            f"batch_{batch}",
            lambda b=batch: _infer_batch(ctx, b, reference, gen, session, FP32_TOLERANCE),
        )


def _ort_session(ctx: Context, path: Path) -> Any:
    """onnxruntime on the CUDA provider when asked and present; what happened is recorded."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = "CUDAExecutionProvider" if ctx.cuda else "CPUExecutionProvider"
    record: dict[str, Any] = {"available": available, "wanted": wanted}
    providers = (
        [wanted, "CPUExecutionProvider"] if wanted in available else ["CPUExecutionProvider"]
    )
    if wanted not in available:
        record["not_available"] = (
            f"onnxruntime {ort.__version__} has no {wanted} (install onnxruntime-gpu built for "
            f"CUDA {torch.version.cuda}); the ONNX rows ran on the CPU provider instead"
        )
    session = ort.InferenceSession(str(path), providers=providers)
    record["used"] = session.get_providers()  # falls back to CPU silently if CUDA fails to load
    if wanted not in record["used"] and "not_available" not in record:
        record["not_available"] = f"{wanted} listed but failed to load; see the log"
    ctx.result["onnxruntime"] = record
    ctx.save()
    return session


def _infer_batch(ctx: Context, batch: int, reference, gen, session, tolerance: float) -> dict:
    import numpy as np

    x = np.random.default_rng(batch).uniform(-1, 1, (batch, 3, ctx.size, ctx.size))
    x = x.astype(np.float32)
    with torch.inference_mode():
        want = reference(torch.from_numpy(x)).numpy()
    runners: dict[str, Callable[[], Any]] = {}
    xt = torch.from_numpy(x).to(ctx.device)

    def eager(dtype):
        def run() -> Any:
            with (
                torch.inference_mode(),
                torch.autocast(xt.device.type, dtype, enabled=dtype is not None),
            ):
                out = gen(xt).float()
            ctx.sync()
            return out

        return run

    runners["eager-fp32"] = eager(None)
    runners["eager-fp16"] = eager(torch.float16)
    if session is not None:
        name = session.get_inputs()[0].name
        runners["onnxruntime"] = lambda: session.run(None, {name: x})[0]
    out: dict[str, Any] = {}
    for label, run in runners.items():
        got = run()
        got = got.cpu().numpy() if isinstance(got, torch.Tensor) else got
        diff = float(np.abs(got - want).max())
        per = _seconds_per_call(run, 3 if ctx.quick else 20)
        out[label] = {"images_per_s": batch / per, "ms_per_batch": per * 1000, "max_abs_diff": diff}
    if "onnxruntime" in out:
        out["onnxruntime"]["within_export_tolerance"] = (
            out["onnxruntime"]["max_abs_diff"] <= tolerance
        )
        out["onnxruntime"]["tolerance"] = tolerance
    return out


def _seconds_per_call(run: Callable[[], Any], n: int) -> float:
    run()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# -- report -----------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _step_table(title: str, result: dict[str, Any]) -> list[str]:
    lines = [f"### {title}", ""]
    for key, res in result.items():
        if not key.startswith("batch_"):
            continue
        lines += [f"{key.replace('_', ' ')}:", ""]
        if "timing" not in res:
            lines += [f"- error: {res.get('error')}", ""]
            continue
        lines += [
            "| variant | s/step | images/s | ratio to direct (paired) | peak MiB | warm-up s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, t in res["timing"].items():
            lines.append(
                f"| {name} | {t['s_per_step']:.4f} | {t['images_per_s']:.1f} "
                f"| {t['paired_ratio']:.3f} | {_fmt(t.get('peak_mem_mib'), '.0f')} "
                f"| {_fmt(t.get('warmup_s'), '.1f')} |"
            )
        lines += [f"- skipped {k}: {v}" for k, v in res.get("skipped", {}).items()]
        lines += [f"- failed {k}: {v}" for k, v in res.get("errors", {}).items()]
        lines.append("")
    return lines


def markdown(report: dict[str, Any]) -> str:
    parts = report["parts"]
    lines = [
        f"## GPU check (bench/gpu_check.py, device {report['device']}"
        f"{', --quick' if report['quick'] else ''}): {report.get('seconds')} s",
        "",
    ]
    lines += ["| part | status | seconds | budget |", "|---|---|---:|---:|"]
    lines += [
        f"| {n} | {r['status']} | {r['seconds']} | {r['budget_s']:.0f} |" for n, r in parts.items()
    ]
    lines.append("")
    env = parts.get("environment", {}).get("result", {})
    if env:
        lines += ["Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), ""]
    if "train_step" in parts:
        res = parts["train_step"].get("result", {})
        lines += _step_table("Training step", res)
        if "auto" in res:
            a = res["auto"]
            lines += [
                f"`train.mixed_precision=auto` picks {a['picks']}; fastest: {a['fastest']}",
                "",
            ]
    if "compile" in parts:
        res = parts["compile"].get("result", {})
        lines += _step_table(f"torch.compile ({res.get('variant')})", res)
        lines += [f"torch.compile skipped: {res['skipped']}", ""] if "skipped" in res else []
    fit = parts.get("fit", {}).get("result", {})
    for mode in ("dashboard_on", "dashboard_off"):
        r = fit.get(mode, {})
        if "images_per_s_epoch2" in r:
            lines.append(
                f"- fit, {mode.replace('_', ' ')}: {r['images_per_s_epoch2']:.1f} images/s (epoch 2), "
                f"losses finite {r['losses_finite']}, checkpoint {r['checkpoint']}"
            )
    if "resume" in fit:
        lines.append(f"- resume to epoch 3: {fit['resume'].get('epoch_3_checkpoint')}")
    ddp = parts.get("ddp", {}).get("result", {})
    if "backend" in ddp:
        lines.append(
            f"- DDP, one rank: backend {ddp['backend']}, world {ddp['world_size']}, "
            f"{ddp['ddp_wrapped']}, {ddp['epochs_completed']} epoch in {ddp['fit_seconds']:.1f} s, "
            f"checkpoint {ddp['checkpoint']}"
        )
    inf = parts.get("inference", {}).get("result", {})
    if inf:
        ort = inf.get("onnxruntime", {})
        lines += ["", "### Inference", ""]
        if ort.get("not_available"):
            lines += [f"onnxruntime: {ort['not_available']}", ""]
        lines += [
            "| batch | variant | images/s | ms/batch | max abs diff to CPU fp32 |",
            "|---:|---|---:|---:|---:|",
        ]
        for key, res in inf.items():
            if key.startswith("batch_") and "error" not in res:
                for name, r in res.items():
                    lines.append(
                        f"| {key[6:]} | {name} | {r['images_per_s']:.1f} | {r['ms_per_batch']:.1f} "
                        f"| {r['max_abs_diff']:.2e} |"
                    )
    if report.get("problems"):
        lines += ["", "Problems:", ""] + [f"- {p}" for p in report["problems"]]
    return "\n".join(lines) + "\n"
