"""What the training loop adds per step for exact mid-epoch resumes, without the step itself.

``Trainer._run_batches`` wraps each step in ``protect(...)`` (a signal waits for
the step to end, so a stop leaves whole steps only), marks the step started and
done, and reads the clock for the time-based checkpoint. This times exactly
that bookkeeping around an empty step, against the bare ``step_done()`` that
was there before, under the real signal handlers.

    python bench/step_bookkeeping.py [--steps N]
"""

from __future__ import annotations

import argparse
import math
import time

from _common import cpu_model

from nectargan.trainers.progress import Progress
from nectargan.trainers.signals import handling_signals, protect


def bare(progress: Progress, steps: int) -> None:
    for _ in range(steps):
        progress.step_done()


def guarded(progress: Progress, steps: int, due: float = math.inf) -> None:
    for _ in range(steps):
        with protect("the training step"):
            progress.step_started()
            progress.step_done()
        if time.monotonic() >= due:
            pass


def per_step_us(loop, steps: int, repeats: int = 5) -> float:
    """The best of ``repeats`` runs, in microseconds per step."""
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        loop(Progress(), steps)
        best = min(best, time.perf_counter() - started)
    return best / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    args = parser.parse_args()
    with handling_signals():
        before, after = per_step_us(bare, args.steps), per_step_us(guarded, args.steps)
    print(f"Machine: {cpu_model()}")
    print(f"bare step_done():             {before:.2f} us/step")
    print(f"protect + markers + clock:    {after:.2f} us/step (+{after - before:.2f})")


if __name__ == "__main__":
    main()
