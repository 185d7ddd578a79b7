"""Headless Chromium renders a live run's val_metrics (three panes) and run_info windows."""

from __future__ import annotations

import os
import shutil

import pytest
from _support import open_env_page, tiny_training_config

from nectargan.runs import records as rm
from nectargan.trainers import Pix2pixTrainer

pytestmark = pytest.mark.browser

# the plot with a PSNR trace: its traces and the number of y axes in its layout
VAL_PLOT = (
    "() => { const p = Array.from(document.querySelectorAll('.js-plotly-plot'))"
    ".find(p => p.data && p.data.some(t => t.name === 'PSNR'));"
    " if (!p) return null;"
    " return {traces: p.data.map(t => [t.name, t.x.length, t.yaxis]),"
    " axes: Object.keys(p.layout).filter(k => k.startsWith('yaxis')).sort(),"
    " drawn: p.querySelectorAll('.scatterlayer .trace').length}; }"
)


def test_val_metrics_and_run_info_render(browser, visdom_server, env_name, dataroot, tmp_path):
    cfg = tiny_training_config(
        tmp_path / "out",
        dataroot,
        "browser",
        visualizer={"visdom": {"enable": True, "port": visdom_server.port, "env_name": env_name}},
    )
    trainer = Pix2pixTrainer(cfg)
    trainer.fit()
    trainer.close()
    rows = rm.read_val_metrics(trainer.experiment_dir)

    page, failed = open_env_page(browser, visdom_server, env_name, (1500, 1100))
    page.wait_for_function(
        f"() => {{ const v = ({VAL_PLOT})(); return v && v.drawn === 3; }}", timeout=30_000
    )
    val = page.evaluate(VAL_PLOT)
    assert sorted(val["traces"]) == sorted(
        [["L1", len(rows), "y"], ["PSNR", len(rows), "y2"], ["SSIM", len(rows), "y3"]]
    )
    assert val["axes"] == ["yaxis", "yaxis2", "yaxis3"]  # one pane, one scale per metric
    page.wait_for_function(
        "() => document.body.innerText.includes('best val L1')"
        " && document.body.innerText.includes('2/2')",
        timeout=30_000,
    )
    text = page.evaluate("() => document.body.innerText")
    best = min(rows, key=lambda r: r["l1"])
    assert f"{best['l1']:.4f} at epoch {best['epoch']}" in text
    assert "checkpoints/best.pt" in text and str(trainer.experiment_dir) in text
    # every per-epoch window is on the page: val_metrics, lr, throughput and the loss graphs
    assert page.locator(".js-plotly-plot").count() == 5

    shot = tmp_path / "validation_dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("NECTARGAN_SCREENSHOT_DIR")  # e.g. for CI artifacts
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, os.path.join(keep, shot.name))
    page.close()
    assert not [f for f in failed if "127.0.0.1" in f], failed
