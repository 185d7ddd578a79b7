"""What stopping and restarting the dashboard thread at every epoch end would cost.

Run: ``.venv/bin/python bench/epoch_boundary.py`` (``--quick`` for a smoke run).

``Trainer.fit()`` keeps one update thread for the whole run; the previous
design stopped it (final flush + a full env save on the server) and started a
new one at every epoch end. This measures that stop + start on a loopback
Visdom server while the env grows as a run's would: the loss graphs (6
series) and a 3x256 px image grid, after each simulated epoch of N points per
series. Reported: median and max seconds per epoch boundary, i.e. the time
the training thread waited at each epoch end in the old design (0 now).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _common import cpu_model, visdom_server

from nectargan.visualizer.visdom.visualizer import VisdomVisualizer


def boundaries(vis: VisdomVisualizer, epochs: int, points: int) -> list[float]:
    """Seconds of each epoch end's stop_thread() + start_thread() after ``points`` per series."""
    images = torch.rand(4, 3, 256, 256) * 2 - 1
    out, x = [], 0.0
    vis.start_thread()
    for _ in range(epochs):
        for _ in range(points):
            x += 1.0
            vis.update_loss_graphs(
                x, {f"G_{k}": 1.0 / x for k in range(4)}, {"D_real": 0.5, "D_fake": 0.4}
            )
        vis.update_images(images, images, images, "x | y | z", image_size=256)
        started = time.perf_counter()
        vis.stop_thread()
        vis.start_thread()
        out.append(time.perf_counter() - started)
    vis.stop_thread()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    epochs, sizes = (3, [100]) if args.quick else (8, [250, 2500])
    with tempfile.TemporaryDirectory() as tmp, visdom_server(Path(tmp)) as port:
        results = []
        for points in sizes:
            vis = VisdomVisualizer(env=f"bench_{points}", server="127.0.0.1", port=port)
            vis.clear_env()
            times = boundaries(vis, epochs, points)
            results.append(
                {
                    "points_per_series_per_epoch": points,
                    "epochs": epochs,
                    "median_s": statistics.median(times),
                    "max_s": max(times),
                    "saves": vis.stats.saves,
                }
            )
            vis.close()
    print(json.dumps({"cpu": cpu_model(), "results": results}))


if __name__ == "__main__":
    main()
