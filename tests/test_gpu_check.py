"""bench/gpu_check.py runs its CPU form end to end, so it is known to work before a GPU is lent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"


def with_root_on_path() -> dict[str, str]:
    return os.environ | {"PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=with_root_on_path(),
    )


def gpu_check(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = with_root_on_path()
    cmd = [sys.executable, str(SCRIPT), "--device", "cpu", "--quick", "--out", str(out), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def test_quick_cpu_run_passes_every_part_and_writes_both_reports(tmp_path):
    res = gpu_check(tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    parts = report["parts"]
    assert {n: p["status"] for n, p in parts.items()} == dict.fromkeys(
        ["environment", "train_step", "compile", "fit", "ddp", "inference"], "ok"
    )
    assert report["problems"] == []

    steps = parts["train_step"]["result"]
    for batch in ("batch_1", "batch_2"):
        timing = steps[batch]["timing"]
        assert set(timing) == {"direct", "fp32", "fp32+cl", "bf16", "bf16+cl"}
        assert all(t["s_per_step"] > 0 and t["paired_ratio"] > 0 for t in timing.values())
        assert set(steps[batch]["skipped"]) == {"fp16", "fp16+cl"}  # CUDA only
    assert steps["auto"]["picks"] in ("fp32", "bf16")  # CPU: no channels_last under auto
    assert parts["compile"]["result"]["variant"] == steps["auto"]["fastest"]

    fit = parts["fit"]["result"]
    for mode in ("dashboard_on", "dashboard_off"):
        assert fit[mode]["losses_finite"] and fit[mode]["checkpoint"]
        assert fit[mode]["images_per_s_epoch2"] > 0
    assert fit["resume"]["epoch_3_checkpoint"] is True

    ddp = parts["ddp"]["result"]
    assert (ddp["backend"], ddp["world_size"], ddp["ddp_wrapped"]) == ("gloo", 1, "GanDDP")
    assert ddp["checkpoint"] and ddp["losses_finite"]

    inference = parts["inference"]["result"]
    assert inference["onnxruntime"]["used"][0] == "CPUExecutionProvider"
    for batch in ("batch_1", "batch_2"):
        assert set(inference[batch]) == {"eager-fp32", "eager-fp16", "onnxruntime"}
        assert inference[batch]["onnxruntime"]["within_export_tolerance"] is True

    md = (tmp_path / "gpu_check.md").read_text()
    assert "| train_step | ok |" in md and "| 2 | onnxruntime |" in md
    assert "backend gloo" in md


def test_a_failing_part_and_a_part_out_of_time_are_recorded_and_do_not_stop_the_rest(tmp_path):
    res = gpu_check(
        tmp_path,
        "--parts",
        "environment",
        "ddp",
        "--inject-fault",
        "environment",
        "--budget",
        "ddp=1",
    )
    assert res.returncode == 1
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    env, ddp = report["parts"]["environment"], report["parts"]["ddp"]
    assert env["status"] == "failed" and "fault injected" in env["error"]
    assert ddp["status"] == "timeout" and ddp["budget_s"] == 1
    assert report["problems"] == ["environment: failed", "ddp: timeout"]
    md = (tmp_path / "gpu_check.md").read_text()
    assert "| environment | failed |" in md and "| ddp | timeout |" in md


def test_a_bad_budget_is_named():
    res = run_script("--out", "x", "--budget", "fit=soon")
    assert res.returncode == 2
    assert "budget for fit: expected seconds > 0, got 'soon'" in res.stderr


def test_cuda_asked_on_a_torch_without_cuda_says_what_to_install(tmp_path):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the check would run")
    res = run_script("--out", str(tmp_path))
    assert res.returncode == 2
    assert "sees no CUDA device; install a CUDA build" in res.stderr
    assert not (tmp_path / "gpu_check.json").exists()
