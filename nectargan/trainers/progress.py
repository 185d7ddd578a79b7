"""Where a training run stands: the epoch and step counters, moved only here.

Checkpoint names, LR schedules, the loss log's step column and resume all
read these numbers, so they must mean one thing; the trainer exposes them
read-only and calls these methods at the one place each event happens.
"""

from __future__ import annotations

from dataclasses import dataclass

from nectargan.errors import CheckpointUserError


@dataclass
class Progress:
    """``current_epoch``: 0-based epoch being (or last) trained; ``epochs_completed``: epochs
    whose batches are all done (also the first epoch of a resumed run); ``global_step``:
    optimizer steps over the whole training, across resumes; ``batches_done``: batches of
    the current epoch trained (a mid-epoch checkpoint resumes after them); ``in_step``: a
    step has started and not finished (a stop there leaves that batch half applied)."""

    current_epoch: int = 0
    epochs_completed: int = 0
    global_step: int = 0
    batches_done: int = 0
    in_step: bool = False

    def begin_epoch(self, epoch: int, batches_done: int = 0) -> None:
        """Epoch ``epoch`` (0-based) starts, or resumes after ``batches_done`` batches."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch: expected a 0-based epoch index >= 0, got {epoch!r}")
        self.current_epoch = epoch
        self.batches_done = batches_done

    def step_started(self) -> None:
        self.in_step = True

    def step_done(self) -> None:
        """One training step (one batch) finished."""
        self.global_step += 1
        self.batches_done += 1
        self.in_step = False

    @property
    def mid_epoch(self) -> bool:
        """Inside an epoch: it has begun and its batches are not all done."""
        return self.epochs_completed <= self.current_epoch

    def end_epoch(self) -> None:
        """The current epoch's batches are all done (re-training an earlier epoch keeps
        the count: it never goes back)."""
        self.epochs_completed = max(self.epochs_completed, self.current_epoch + 1)

    def restore(self, epochs_completed: int, global_step: int) -> None:
        """Continue a run saved after ``epochs_completed`` epochs and ``global_step`` steps."""
        for name, value in (("epoch", epochs_completed), ("global_step", global_step)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise CheckpointUserError(
                    f"checkpoint {name}: expected an integer >= 0, got {value!r}"
                )
        self.epochs_completed = epochs_completed
        self.current_epoch = epochs_completed
        self.global_step = global_step
        self.batches_done = 0
