"""VisdomVisualizer's threaded engine: every point delivered, images coalesced, bounds, long runs."""

from __future__ import annotations

import random
import time

import torch
from test_visualizer_spec import connect, grid_pixels

from nectargan.visualizer.visdom.handoff import Handoff


def solid(rgb: tuple[float, float, float], size: int = 32) -> torch.Tensor:
    return torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, size, size).clone()


def test_threaded_run_delivers_every_point_and_the_last_triplet(visdom_server, env_name):
    vis = connect(visdom_server, env_name, update_interval=0.1)
    vis.clear_env()
    vis.start_thread()
    rng = random.Random(3)
    sent: dict[str, tuple[list, list]] = {}
    steps = 3000
    for i in range(steps):
        g = {"G_GAN": rng.uniform(0, 2), "G_L1": torch.tensor(rng.uniform(0, 50))}
        d = {"D_real": rng.uniform(0, 1), "D_fake": rng.uniform(0, 1)}
        if i >= 1000:
            g["G_VGG"] = rng.uniform(0, 5)  # a loss that appears later
        for name, value in (g | d).items():
            xs, ys = sent.setdefault(name, ([], []))
            xs.append(float(i))
            ys.append(float(value))
        vis.update_loss_graphs(i, g, d)  # its cost per call: bench/visualizer.py
        if i % 100 == 0:
            img = torch.rand(1, 3, 64, 64) * 2 - 1
            vis.update_images(img, img, img, f"step {i}", image_size=32)
            time.sleep(0.01)  # spread the run over a few send cycles
    last = (solid((1.0, -1.0, -1.0)), solid((-1.0, 1.0, -1.0)), solid((-1.0, -1.0, 1.0)))
    vis.update_images(*last, "last", image_size=32)
    vis.stop_thread()

    got = visdom_server.line_series("loss_G", env_name) | visdom_server.line_series(
        "loss_D", env_name
    )
    assert got == sent
    stats = vis.stats
    assert stats.points_received == stats.points_delivered == sum(len(v[0]) for v in sent.values())
    assert stats.points_pending == stats.points_dropped == stats.failures == 0
    pixels, win = grid_pixels(visdom_server, env_name)
    assert win["title"] == "last"
    assert [pixels[16, c * 34 + 16].tolist() for c in range(3)] == [
        [255, 0, 0],
        [0, 255, 0],
        [0, 0, 255],
    ]


def test_images_coalesce_to_the_newest(visdom_server, env_name):
    vis = connect(visdom_server, env_name, update_interval=60)
    vis.start_thread()
    for i in range(10):
        v = -1.0 + i * 0.2
        t = torch.full((3, 8, 8), v)
        vis.update_images(t, t, t, f"img {i}", image_size=8)
    vis.stop_thread()
    stats = vis.stats
    assert (stats.images_received, stats.images_sent, stats.images_coalesced) == (10, 1, 9)
    pixels, win = grid_pixels(visdom_server, env_name)
    assert win["title"] == "img 9"
    assert int(pixels[4, 4, 0]) == round((0.8 + 1) / 2 * 255)


def test_full_handoff_drops_the_oldest_and_counts_them(visdom_server, env_name):
    vis = connect(visdom_server, env_name, update_interval=60)
    vis._engine.handoff = Handoff(limit=10)
    vis.start_thread()
    for i in range(25):
        vis.update_loss_graphs(i, {"a": float(i), "b": 0.0}, {"d": 0.0})
    vis.stop_thread()
    stats = vis.stats
    assert stats.points_dropped == 15 * 3
    assert stats.points_delivered == 10 * 3
    assert stats.points_pending == 0
    assert visdom_server.line_series("loss_G", env_name)["a"][0] == [
        float(i) for i in range(15, 25)
    ]


def test_long_run_stays_bounded_and_one_flush_sends_it(visdom_server, env_name):
    """100k points per series (6 series): what is shown stays bounded, one flush sends it."""
    vis = connect(visdom_server, env_name, update_interval=60, max_points=2000)
    engine = vis._engine
    g_names, d_names = ["G_GAN", "G_L1", "G_VGG", "G_FM"], ["D_real", "D_fake"]
    n = 100_000
    with engine.io_lock:  # fold straight in: this test is about the sending side
        g, d = engine.windows["loss_G"], engine.windows["loss_D"]
        for i in range(n):
            x = float(i)
            g.add(x, dict.fromkeys(g_names, x / 1000))
            d.add(x, dict.fromkeys(d_names, -x / 1000))
    assert vis.flush()  # its duration (10 ms here): bench/visualizer.py, docs/benchmarks.md
    series = visdom_server.line_series("loss_G", env_name)
    assert set(series) == set(g_names)
    for xs, ys in series.values():
        assert 1000 <= len(xs) <= 2000
        assert xs[0] == (64 - 1) / 2  # buckets of 64 raw points: 100k / 64 = 1562 shown
        assert all(abs(y - x / 1000) < 1e-9 for x, y in zip(xs, ys, strict=True))
    assert vis.stats.shown_points == {"loss_G": len(xs), "loss_D": len(xs)}
