"""Headless Chromium renders what a client pushed to the Visdom server, offline."""

from __future__ import annotations

import numpy as np
import pytest
from _support import open_env_page, wait_for

pytestmark = pytest.mark.browser


def test_env_page_renders_line_plot_and_image(browser, visdom_server, env_name, tmp_path):
    client = visdom_server.client(env_name)
    xs = np.arange(25, dtype=float)
    ys = np.column_stack([np.sin(xs / 4), np.cos(xs / 4)])
    client.line(
        X=np.column_stack([xs, xs]),
        Y=ys,
        win="loss",
        env=env_name,
        opts={"title": "loss", "legend": ["a", "b"]},
    )
    img = np.zeros((3, 64, 96), dtype=np.float32)
    img[0, :, :48] = 1.0
    img[2, :, 48:] = 1.0
    client.image(img, win="img", env=env_name, opts={"caption": "pushed"})
    wait_for(lambda: visdom_server.window("img", env_name), 10, what="image window")

    page, failed = open_env_page(browser, visdom_server, env_name, (1400, 900))

    page.wait_for_function(
        "() => { const p = document.querySelector('.js-plotly-plot');"
        " return p && p.data && p.data.length === 2 && document.querySelector('.js-plotly-plot .scatterlayer path'); }",
        timeout=30_000,
    )
    counts = page.evaluate(
        "() => Array.from(document.querySelector('.js-plotly-plot').data).map(t => t.x.length)"
    )
    assert counts == [25, 25]
    traces = page.locator(".js-plotly-plot .scatterlayer .trace").count()
    assert traces == 2

    page.wait_for_function(
        "() => Array.from(document.images).some(i => i.src.startsWith('data:image') && i.complete && i.naturalWidth > 0)",
        timeout=30_000,
    )
    size = page.evaluate(
        "() => { const i = Array.from(document.images).find(i => i.src.startsWith('data:image'));"
        " return [i.naturalWidth, i.naturalHeight]; }"
    )
    assert size == [96, 64]
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
    local_failures = [f for f in failed if "127.0.0.1" in f]
    assert not local_failures, local_failures
