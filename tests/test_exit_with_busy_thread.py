"""A process that exits while the visualizer's thread is still busy must exit cleanly.

This was the multi-node abort (issue 11, item 21): ``stop_thread()`` gave up on a
slow server, the thread went on rendering images with torch, and at interpreter
exit the C++ runtime aborted the finished run ("terminate called without an
active exception", status 134). Without the exit gate the first script below
aborts in 10 of 10 runs here; the second shows the mechanism with bare torch.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

ABORT = "terminate called without an active exception"

BUSY_VISUALIZER = textwrap.dedent(
    """
    import sys, time, torch
    from nectargan.visualizer.visdom.visualizer import VisdomVisualizer
    vis = VisdomVisualizer(env=sys.argv[2], port=int(sys.argv[1]), update_interval=0.01)
    vis.start_thread()
    x = torch.rand(4, 3, 1024, 1024)  # large cells shrunk to 128 px: rendering is torch work
    end = time.monotonic() + 0.7
    while time.monotonic() < end:
        vis.update_images(x, x, x, "busy", image_size=128)
        time.sleep(0.002)
    vis.stop_thread(timeout=0.001)  # gives up at once, as on a slow server: thread still busy
    print("main done", flush=True)
    """
)


def run_script(source: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", source, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("attempt", range(3))
def test_exit_while_the_thread_renders_images_is_clean(visdom_server, env_name, attempt):
    result = run_script(BUSY_VISUALIZER, str(visdom_server.port), f"{env_name}_{attempt}")
    assert ABORT not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 0, result.stderr[-2000:]
    assert "main done" in result.stdout


GATED_TORCH_LOOP = textwrap.dedent(
    """
    import contextlib, threading, time, torch, torch.nn.functional as F
    from nectargan.visualizer.visdom.exit_gate import torch_work
    image = torch.rand(1, 3, 256, 256)
    def loop():
        while True:
            with {gate}:
                F.interpolate(image, size=(200, 200), mode="bilinear", antialias=True)
    threading.Thread(target=loop, daemon=True).start()
    time.sleep(0.2)
    """
)


def test_the_gate_is_what_prevents_the_abort():
    """Control: the same daemon loop without the gate aborts; with it, exits 0."""
    bare = run_script(GATED_TORCH_LOOP.replace("{gate}", "contextlib.nullcontext()"))
    gated = run_script(GATED_TORCH_LOOP.replace("{gate}", "torch_work()"))
    assert bare.returncode != 0 and ABORT in bare.stderr, (bare.returncode, bare.stderr[-500:])
    assert gated.returncode == 0 and ABORT not in gated.stderr, gated.stderr[-2000:]
