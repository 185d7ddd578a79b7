"""VisdomVisualizer: the spec page's examples verbatim, and the basic API against a real server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch
from _support import TestServer, free_port

from nectargan.visualizer.visdom import server as managed
from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

SPEC_PAGE = Path("/work/shared/spec/visdom.md")

# The spec page's code blocks, character for character (trailing space included).
SPEC_CREATE = (
    """\
from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

vis = VisdomVisualizer(
    env='my_env_name', # Can be anything. Or ignored for default ('main')
    port=8097          # 8097 is Visdom's default port number
"""
    + ") \n"
)  # the page has a trailing space after ")"
SPEC_CLEAR = "vis.clear_env()\n"
SPEC_START = "vis.start_thread()\n"
SPEC_STOP = "vis.stop_thread()\n"


@pytest.fixture(scope="module")
def default_port_server(tmp_path_factory):
    """A Visdom server on 8097, the port the spec's example hard-codes (reuse one if running)."""
    state = managed.probe("127.0.0.1", 8097)
    if state == "other":
        pytest.skip("port 8097 is taken by something that is not a Visdom server")
    srv = TestServer(tmp_path_factory.mktemp("v8097") / "envs", port=8097)
    if state == "free":
        srv.start()
    yield srv
    if state == "free":
        srv.stop()


def connect(srv: TestServer, env: str, **kwargs) -> VisdomVisualizer:
    return VisdomVisualizer(env=env, server="http://127.0.0.1", port=srv.port, **kwargs)


def visdom_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "nectargan-visdom"]


def grid_pixels(srv: TestServer, env: str):
    """The comparison grid as an (H, W, 3) uint8 array, decoded from what the server holds."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    win = srv.window("comparison_grid", env)
    assert win is not None, "no comparison_grid window"
    src = win["content"]["src"]
    assert src.startswith("data:image/png;base64,")
    png = base64.b64decode(src.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), win


def test_spec_page_still_has_these_examples():
    if not SPEC_PAGE.exists():
        pytest.skip("spec page not available here")
    text = SPEC_PAGE.read_text()
    for block in (SPEC_CREATE, SPEC_CLEAR, SPEC_START, SPEC_STOP):
        assert f"```python\n{block}```" in text


def test_spec_examples_verbatim(default_port_server):
    ns: dict = {}
    exec(SPEC_CREATE, ns)
    vis = ns["vis"]
    try:
        exec(SPEC_CLEAR, ns)
        assert vis.is_threaded is False
        exec(SPEC_START, ns)
        assert vis.is_threaded is True
        for step in range(20):
            vis.update_loss_graphs(
                float(step),
                {"G_GAN": 1.0 / (step + 1), "G_L1": torch.tensor(0.5)},
                {"D_real": 0.7, "D_fake": 0.3},
            )
        x = torch.rand(1, 3, 32, 32) * 2 - 1
        vis.update_images(x, x, x, title="x | y | y_fake", image_size=64)
        exec(SPEC_STOP, ns)
        assert vis.is_threaded is False
        assert vis.stats.points_delivered == 80
        series = default_port_server.line_series("loss_G", "my_env_name")
        assert set(series) == {"G_GAN", "G_L1"}
        assert series["G_GAN"][0] == [float(s) for s in range(20)]
        assert series["G_L1"][1] == [0.5] * 20
        assert default_port_server.window("comparison_grid", "my_env_name") is not None
    finally:
        vis.stop_thread()
        exec(SPEC_CLEAR, ns)
    assert default_port_server.window("loss_G", "my_env_name") is None


def test_loss_windows_titles_labels_legend(visdom_server, env_name):
    vis = connect(visdom_server, env_name)
    vis.update_loss_graphs(0, {"G_GAN": 1.0, "G_L1": 2.0}, {"D_real": 0.5, "D_fake": 0.25})
    vis.update_loss_graphs(1.5, {"G_GAN": 0.9, "G_L1": 1.8}, {"D_real": 0.4, "D_fake": 0.3})
    for win, title, legend in (
        ("loss_G", "Generator Loss", ["G_GAN", "G_L1"]),
        ("loss_D", "Discriminator Loss", ["D_real", "D_fake"]),
    ):
        data = visdom_server.window(win, env_name)
        assert data["title"] == title
        layout = data["content"]["layout"]
        assert layout["xaxis"]["title"] == "Epoch"  # x is the fractional epoch (issue 24)
        assert [layout["yaxis"]["title"], layout["yaxis2"]["title"]] == legend  # a pane each
        assert [t["name"] for t in data["content"]["data"]] == legend
    assert visdom_server.line_series("loss_D", env_name) == {
        "D_real": ([0.0, 1.5], [0.5, 0.4]),
        "D_fake": ([0.0, 1.5], [0.25, 0.3]),
    }


def test_loss_values_may_be_numbers_or_zero_dim_tensors(visdom_server, env_name):
    import numpy as np

    vis = connect(visdom_server, env_name)
    vis.update_loss_graphs(
        torch.tensor(3),
        {"a": 1, "b": np.float32(0.5), "c": torch.tensor(0.25, dtype=torch.float64)},
        {"d": torch.tensor([0.125], dtype=torch.bfloat16)},
    )
    g = visdom_server.line_series("loss_G", env_name)
    assert g == {"a": ([3.0], [1.0]), "b": ([3.0], [0.5]), "c": ([3.0], [0.25])}
    assert visdom_server.line_series("loss_D", env_name) == {"d": ([3.0], [0.125])}


def test_new_loss_key_later_adds_a_series(visdom_server, env_name):
    vis = connect(visdom_server, env_name)
    vis.update_loss_graphs(0, {"a": 1.0}, {"d": 1.0})
    vis.update_loss_graphs(1, {"a": 2.0, "late": 5.0}, {"d": 2.0})
    vis.update_loss_graphs(2, {"late": 6.0}, {"d": 3.0})
    assert visdom_server.line_series("loss_G", env_name) == {
        "a": ([0.0, 1.0], [1.0, 2.0]),
        "late": ([1.0, 2.0], [5.0, 6.0]),
    }


def test_nan_and_inf_become_gaps_and_are_counted(visdom_server, env_name):
    vis = connect(visdom_server, env_name)
    vis.update_loss_graphs(0, {"a": 1.0}, {"d": float("nan")})
    vis.update_loss_graphs(1, {"a": float("inf")}, {"d": torch.tensor(float("-inf"))})
    vis.update_loss_graphs(2, {"a": 3.0}, {"d": 2.0})
    assert vis.stats.gaps == 3
    assert visdom_server.line_series("loss_G", env_name) == {
        "a": ([0.0, 1.0, 2.0], [1.0, None, 3.0])
    }
    assert visdom_server.line_series("loss_D", env_name) == {
        "d": ([0.0, 1.0, 2.0], [None, None, 2.0])
    }


def test_images_side_by_side_at_image_size(visdom_server, env_name):
    vis = connect(visdom_server, env_name)
    red = torch.tensor([1.0, -1.0, -1.0]).view(3, 1, 1).expand(3, 40, 40)
    green = torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1).expand(3, 40, 40)
    blue = torch.tensor([-1.0, -1.0, 1.0]).view(3, 1, 1).expand(3, 40, 40)
    vis.update_images(red, green, blue, "rgb", image_size=50)
    pixels, win = grid_pixels(visdom_server, env_name)
    assert win["title"] == "rgb"
    assert (win["width"], win["height"]) == (3 * 50 + 4, 50)  # each shown at 50 px
    assert pixels.shape == (40, 3 * 40 + 4, 3)  # pixels at native size: never upscaled
    assert pixels[20, 20].tolist() == [255, 0, 0]
    assert pixels[20, 42 + 20].tolist() == [0, 255, 0]
    assert pixels[20, 84 + 20].tolist() == [0, 0, 255]
    vis.update_images(red.repeat(1, 4, 4), green, blue, "big", image_size=30)
    pixels, win = grid_pixels(visdom_server, env_name)
    assert pixels.shape == (30, 3 * 30 + 4, 3)  # larger than image_size: downscaled
    assert pixels[15, 15].tolist() == [255, 0, 0]


def test_batch_shows_as_rows_capped(visdom_server, env_name):
    vis = connect(visdom_server, env_name, max_image_rows=3)
    batch = torch.linspace(-1, 1, 6).view(6, 1, 1, 1).expand(6, 1, 8, 8)
    vis.update_images(batch, batch, batch, "batch", image_size=10)
    pixels, win = grid_pixels(visdom_server, env_name)
    assert (win["width"], win["height"]) == (34, 3 * 10 + 2 * 2)
    assert pixels.shape == (3 * 8 + 2 * 2, 28, 3)
    shades = [int(pixels[r * 10 + 4, 4, 0]) for r in range(3)]
    assert shades == [0, 51, 102]  # rows 0, 1, 2 of the batch: (v + 1) / 2 * 255


def test_jpeg_images(visdom_server, env_name):
    vis = connect(visdom_server, env_name, image_format="jpeg")
    gray = torch.zeros(3, 16, 16)
    vis.update_images(gray, gray, gray, "jpeg", image_size=16)
    win = visdom_server.window("comparison_grid", env_name)
    assert win["content"]["src"].startswith("data:image/jpeg;base64,")


def test_denorm_tensor():
    vis = VisdomVisualizer.__new__(VisdomVisualizer)
    t = torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.0])
    assert vis._denorm_tensor(t).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert vis._denorm_tensor(t, clamp=False).tolist() == [-1.0, 0.0, 0.5, 1.0, 1.5]
    half = vis._denorm_tensor(t.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    with pytest.raises(TypeError, match="torch.Tensor"):
        vis._denorm_tensor([0.0])


def test_clear_env_closes_only_our_windows(visdom_server, env_name):
    other = visdom_server.client(env_name)
    other.text("keep me", win="someone_else", env=env_name)
    vis = connect(visdom_server, env_name)
    vis.update_loss_graphs(0, {"a": 1.0}, {"d": 1.0})
    vis.update_images(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8), torch.zeros(3, 8, 8), "t", 8)
    vis.update_text("summary", win="run_summary")
    vis.clear_env()
    for win in ("loss_G", "loss_D", "comparison_grid", "run_summary"):
        assert visdom_server.window(win, env_name) is None, win
    assert visdom_server.window("someone_else", env_name) is not None
    vis.update_loss_graphs(1, {"b": 2.0}, {"d": 2.0})  # a fresh start, old points forgotten
    assert visdom_server.line_series("loss_G", env_name) == {"b": ([1.0], [2.0])}


def test_update_text(visdom_server, env_name):
    vis = connect(visdom_server, env_name)
    vis.update_text("<b>epoch 1</b>", win="summary", title="Run")
    vis.update_text("<b>epoch 2</b>", win="summary", title="Run")
    win = visdom_server.window("summary", env_name)
    assert win["content"] == "<b>epoch 2</b>"
    assert win["title"] == "Run"


def test_context_manager_threads_and_saves(visdom_server, env_name):
    srv = visdom_server
    with connect(srv, env_name, update_interval=60) as vis:
        assert vis.is_threaded
        vis.update_loss_graphs(0, {"a": 1.0}, {"d": 1.0})
    assert not vis.is_threaded
    assert visdom_threads() == []
    assert srv.line_series("loss_G", env_name) == {"a": ([0.0], [1.0])}
    saved = json.loads((srv.env_dir / f"{env_name}.json").read_text())
    assert "loss_G" in saved["jsons"]
    assert vis.stats.saves >= 1


def test_save_persists_env(visdom_server, env_name):
    srv = visdom_server
    vis = connect(srv, env_name)
    vis.update_loss_graphs(0, {"a": 1.0}, {"d": 1.0})
    vis.save()
    saved = json.loads((srv.env_dir / f"{env_name}.json").read_text())
    assert set(saved["jsons"]) >= {"loss_G", "loss_D"}


def test_start_stop_repeatedly_does_not_leak_threads(visdom_server, env_name):
    vis = connect(visdom_server, env_name, update_interval=0.05)
    for epoch in range(10):
        vis.start_thread()
        vis.start_thread()  # idempotent
        vis.update_loss_graphs(epoch, {"a": float(epoch)}, {"d": 0.0})
        vis.stop_thread()
        vis.stop_thread()  # idempotent
        assert not vis.is_threaded
    assert visdom_threads() == []
    assert visdom_server.line_series("loss_G", env_name)["a"][1] == [float(e) for e in range(10)]


def test_no_server_raises_connection_error_quickly():
    port = free_port()
    start = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        VisdomVisualizer(env="x", port=port)
    assert time.monotonic() - start < 2.0
    message = str(info.value)
    assert f"http://localhost:{port}" in message
    assert f"nectargan visdom start --port {port}" in message
    assert "autostart=True" in message


def test_autostart_starts_a_managed_server(env_name):
    port = free_port()
    try:
        vis = VisdomVisualizer(env=env_name, port=port, autostart=True)
        assert managed.probe("127.0.0.1", port) == "visdom"
        vis.update_loss_graphs(0, {"a": 1.0}, {"d": 1.0})
        assert vis.stats.points_delivered == 2
        vis.close()
    finally:
        managed.stop(port)
