"""``num_workers=-1``: size the loader's worker pool from the step rate actually measured.

The core count alone cannot say how many workers a run needs: that is the time to
load one batch (decode + augment, per worker) over the time one training step
takes, and both depend on the data, the augmentations, the model and the device.
So the loader measures both: the item time with a short probe when it is built,
the step time while it is iterated (the time the training loop spends between
two batches, excluding the wait for the next one). The first epoch runs with a
core-count guess; at each epoch's end the pool is resized when the measurements
call for a different size (workers are restarted only then).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import torch
from torch.utils.data import DataLoader

# Workers provision this much more loading capacity than the step rate needs, so
# a slow image or a busy core does not stall the step.
HEADROOM = 1.5
MAX_WORKERS = 16


def probe_item_seconds(dataset: Any, n: int = 4) -> float:
    """Median time to produce one item in this process (one worker's cost per item).

    Runs under a forked RNG, so probing never shifts the training's random stream."""
    times = []
    with torch.random.fork_rng(devices=[]):
        dataset[0]  # first-call costs (imports, caches) are not a worker's steady state
        for i in range(min(n, len(dataset))):
            start = time.perf_counter()
            dataset[i]
            times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] if times else 0.0


def workers_needed(
    item_seconds: float, batch_size: int, step_seconds: float, cores: int, cuda: bool
) -> int:
    """How many workers keep one step per ``step_seconds`` fed.

    On CUDA the step runs on the device and a worker per spare core costs nothing.
    On CPU every worker takes a core from the step's own thread pool, so loading
    moves to workers only when it costs more than that core's share of the step.
    """
    if step_seconds <= 0:
        return 0
    batch_seconds = item_seconds * batch_size
    need = math.ceil(HEADROOM * batch_seconds / step_seconds - 1e-9)  # 6.000001 is 6
    if cuda:
        return max(1, min(need, cores - 1, MAX_WORKERS)) if cores > 1 else 0
    if batch_seconds <= step_seconds / max(cores, 1):
        return 0
    return max(0, min(need, cores // 2, MAX_WORKERS))


class AutoSizedLoader:
    """A DataLoader (built by ``build(num_workers)``) that resizes itself between epochs."""

    def __init__(
        self,
        build: Callable[[int], DataLoader],
        initial_workers: int,
        item_seconds: float,
        batch_size: int,
        cores: int,
        cuda: bool,
        stream: TextIO | None = None,
    ) -> None:
        self._build = build
        self.loader = build(initial_workers)
        self.item_seconds, self.batch_size = item_seconds, batch_size
        self.cores, self.cuda = cores, cuda
        self.step_seconds: float | None = None
        self.stream = stream if stream is not None else sys.stderr

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        # dataset, batch_size, sampler, num_workers...: the current DataLoader's.
        if name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator[Any]:
        it = iter(self.loader)
        stepping, steps = 0.0, 0
        while True:
            try:
                batch = next(it)
            except StopIteration:
                break
            handed = time.perf_counter()
            yield batch  # the training step runs while this generator is suspended
            stepping += time.perf_counter() - handed
            steps += 1
        del it
        if steps:
            self.step_seconds = stepping / steps
            self.resize()

    def resize(self) -> None:
        """Rebuild with the worker count the last epoch's measurements call for."""
        if self.step_seconds is None:
            return
        want = workers_needed(
            self.item_seconds, self.batch_size, self.step_seconds, self.cores, self.cuda
        )
        if want != self.loader.num_workers:
            print(
                f"dataloader: {want} worker(s) from now on (a step takes "
                f"{1000 * self.step_seconds:.1f} ms, loading a batch "
                f"{1000 * self.item_seconds * self.batch_size:.1f} ms per worker)",
                file=self.stream,
            )
            self.loader = self._build(want)
