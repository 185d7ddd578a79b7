"""What recording losses costs per training step, and what a log flush costs over time.

Run: ``.venv/bin/python bench/loss_manager.py``. Compares calling the four
basic pix2pix loss functions directly against ``LossManager.compute_loss_xy``
(weighting, history, log buffering; the batched host transfer happens at the flush), then times
``flush_log`` epoch after epoch to show its cost does not grow with the log.
"""

from __future__ import annotations

import tempfile
import time

import torch

from nectargan.losses.loss_manager import LossManager
from nectargan.losses.pix2pix_objective import pix2pix

STEPS = 2000
EPOCHS = 20


def _inputs() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    image, target = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    logits = torch.randn(1, 1, 4, 4)
    return {
        "G_GAN": (logits, torch.ones_like(logits)),
        "G_L1": (image, target),
        "D_real": (logits, torch.ones_like(logits)),
        "D_fake": (logits, torch.zeros_like(logits)),
    }


def time_direct(spec, inputs) -> float:
    start = time.perf_counter()
    for _ in range(STEPS):
        for name, (x, y) in inputs.items():
            spec[name].function(x, y) * spec[name].weight
    return time.perf_counter() - start


def time_managed(lm: LossManager, inputs) -> float:
    start = time.perf_counter()
    for step in range(STEPS):
        for name, (x, y) in inputs.items():
            lm.compute_loss_xy(name, x, y, epoch=step // 100)
    return time.perf_counter() - start


def main() -> None:
    torch.set_num_threads(1)
    inputs = _inputs()
    spec = pix2pix({}, "basic")
    with tempfile.TemporaryDirectory() as tmp:
        lm = LossManager(tmp)
        lm.init_from_spec(lambda: spec)
        time_direct(spec, inputs), time_managed(lm, inputs)  # warm-up
        direct = min(time_direct(spec, inputs) for _ in range(3))
        managed = min(time_managed(lm, inputs) for _ in range(3))
        per_step = (managed - direct) / STEPS * 1e6
        print(
            f"recording overhead: {per_step:.1f} us/step for 4 losses ({per_step / 4:.1f} us/loss), "
            f"{100 * (managed - direct) / direct:.0f}% of the bare loss math on tiny CPU tensors; "
            "host syncs while recording: none (values are converted when read or flushed)"
        )
        flushes = []
        for epoch in range(EPOCHS):
            time_managed(lm, inputs)
            start = time.perf_counter()
            lm.end_epoch(epoch)
            flushes.append((time.perf_counter() - start) * 1e3)
        early, late = sorted(flushes[1:6])[2], sorted(flushes[-5:])[2]
        print(
            f"flush_log per epoch ({STEPS * 4} new records): median {early:.1f} ms over epochs 2-6, "
            f"{late:.1f} ms over epochs {EPOCHS - 4}-{EPOCHS} (flat: cost ~ new records only)"
        )


if __name__ == "__main__":
    main()
