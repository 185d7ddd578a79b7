# ruff: noqa: E402, SIM105
"""Screenshot a resumed run's dashboard (issue 24 before/after): python bench/resumed_dashboard_shot.py TREE PORT OUT.png

TREE is a checkout (its tests/_support.py gives the tiny config); the run is stopped by Ctrl-C
in epoch 4 of 6 and resumed to the end, then headless Chromium photographs the env.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

tree, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path[:0] = [tree, tree + "/tests"]
from _support import tiny_training_config

from nectargan.dataset import generate_synthetic_dataset
from nectargan.trainers import Pix2pixTrainer

tmp = Path(tempfile.mkdtemp())
py = sys.executable
subprocess.run(
    [py, "-m", "nectargan", "visdom", "start", "--port", str(port), "--env-dir", str(tmp / "envs")],
    check=True,
    env={"PYTHONPATH": tree, "PATH": "/usr/bin:/bin", "NECTARGAN_HOME": str(tmp / "home")},
)
data = generate_synthetic_dataset(tmp / "synth", n=40, size=32)
env = "resumed_run"
vis = {"enable": True, "port": port, "env_name": env, "update_frequency": 2}


def cfg(**extra):
    c = tiny_training_config(tmp / "out", data, "view", visualizer={"visdom": vis}, **extra)
    c["train"]["epochs"], c["train"]["epochs_decay"] = 3, 3
    return c


first = Pix2pixTrainer(cfg())


def stop(trainer, i):
    if (trainer.current_epoch, i) == (3, 4):
        raise KeyboardInterrupt


first.step_observers.append(stop)
try:
    first.fit()
except KeyboardInterrupt:
    pass
first.close()
again = Pix2pixTrainer(
    cfg(
        train={
            "epochs": 3,
            "epochs_decay": 3,
            "resume": {"enable": True, "experiment_dir": str(first.experiment_dir)},
        }
    )
)
again.fit()
again.close()
from playwright.sync_api import sync_playwright

with sync_playwright() as p:
    b = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-quic",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
        ],
    )
    page = b.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"http://127.0.0.1:{port}/env/{env}")
    page.wait_for_timeout(6000)
    page.screenshot(path=out, full_page=True)
    b.close()
subprocess.run(
    [py, "-m", "nectargan", "visdom", "stop", "--port", str(port)],
    env={"PYTHONPATH": tree, "PATH": "/usr/bin:/bin", "NECTARGAN_HOME": str(tmp / "home")},
)
print("done", out)
