"""Headless Chromium opens a review: the offline report page and a replayed Visdom env."""

from __future__ import annotations

import pytest
from test_review import BATCHES, train_tiny_run

from nectargan.review import read_experiment, replay, write_report

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("review_browser"))


def test_report_page_images_load_offline(browser, run_dir, tmp_path):
    result = write_report(read_experiment(run_dir), tmp_path / "report", smooth=0.6)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    requested: list[str] = []
    failed: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(result.html.as_uri(), wait_until="load", timeout=30_000)
    page.wait_for_function(
        "() => Array.from(document.images).every(i => i.complete)", timeout=30_000
    )
    sizes = page.evaluate(
        "() => Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth])"
    )
    assert len(sizes) == len(result.images) == 10  # 2 loss, 2 validation, 4 examples, 2 test
    broken = [src for src, width in sizes if width == 0]
    assert not broken, broken
    assert not failed, failed
    assert requested and all(url.startswith("file://") for url in requested), requested
    assert page.title().startswith("tiny_v1")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    page.close()


def test_replayed_env_renders(browser, run_dir, visdom_server, env_name):
    replay(
        [read_experiment(run_dir)], env=env_name, server="http://127.0.0.1", port=visdom_server.port
    )
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{visdom_server.url}/env/{env_name}", wait_until="load", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.js-plotly-plot').length === 5"  # + val_metrics, lr, throughput
        " && document.querySelector('input[type=range]')"
        " && Array.from(document.images).some(i => i.complete && i.naturalWidth > 0)",
        timeout=30_000,
    )
    counts = page.evaluate(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".map(p => Array.from(p.data).map(t => [t.name, t.x.length]))"
    )
    losses = [tuple(c) for c in sum(counts, []) if c[0][:2] in ("G_", "D_")]
    assert sorted(losses) == [(name, 2 * BATCHES) for name in ("D_fake", "D_real", "G_GAN", "G_L1")]
    assert "Run summary" in page.content()
    page.close()
