"""Registry of named, weighted, tagged losses that computes, records and logs them.

Usage in a trainer::

    losses = LossManager(experiment_dir)
    losses.init_from_spec(pix2pix, config["loss"], "basic")
    g = losses.compute_loss_xy("G_GAN", d_fake_logits, torch.ones_like(d_fake_logits), epoch)
    g = g + losses.compute_loss_xy("G_L1", y_fake, y, epoch)
    ...
    losses.get_loss_values(query=["G"])   # {'G_GAN': 0.69, 'G_L1': 12.3} (weighted)
    losses.end_epoch(epoch)               # writes the loss log

``compute_loss_xy(name, x, y, epoch)`` calls the loss function as ``f(x, y)``:
``x`` is the prediction and ``y`` the target. Adversarial losses take
discriminator *logits* as ``x`` and a same-shaped label tensor as ``y``
(``torch.ones_like`` for "real", ``torch.zeros_like`` for "fake").

Weighted or raw: every loss has a raw value ``L`` and an applied weight ``w``
(the scheduled weight at that epoch). ``compute_loss_xy`` returns ``w * L``,
the term the optimiser sees, and ``get_loss_values`` reports that same
*weighted* value by default, so the numbers on a graph add up to the objective
being minimised ("G_L1 = 12" with lambda 100 means L1 = 0.12).
``get_loss_values(weighted=False)`` gives the raw ``L``; ``get_loss_weights``
gives ``w``; ``print_losses`` shows all three; the log stores raw and weight.

Recording cost: each call keeps the detached loss tensor; nothing is copied
to the host while recording. Pending tensors are converted to floats only
where values are read anyway: ``get_loss_values``/``read_back`` (a trainer's
display step, in the same single transfer as the displayed values),
``get_history`` and ``flush_log``/``end_epoch`` (the epoch end). Then they go
to the bounded history and the loss log. ``sync_every=N`` opts in to a
conversion every N records, for loops that never read values (a device sync
inside the step, so the trainers leave it off).

Upstream NectarGAN's documented API works too, as thin aliases:
``LossManager(config=..., experiment_dir=..., enable_logging=...,
history_buffer_size=...)``, ``register_loss_fn(loss_name=, loss_fn=,
loss_weight=, schedule=, tags=)``, ``compute_loss_xy(loss_name=, x=, y=,
epoch=0)``, ``get_registered_losses(query=, strip=)``,
``get_loss_weights(query=, precision=)`` and ``update_loss_log()``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from nectargan.losses.loss_log import FIELDS, LossLog
from nectargan.losses.registered import (
    LossFunction,
    Record,
    RegisteredLoss,
    describe_loss,
    validated_loss,
)
from nectargan.utils.numbers import check_int, is_number


class _Pending(NamedTuple):
    name: str
    epoch: float
    step: int
    raw: Tensor
    weight: float


class _Latest(NamedTuple):
    raw: Tensor
    weight: float


class LossManager:
    """Named losses with weights/schedules/tags; bounded history; JSON loss log.

    ``experiment_dir``: where the loss log goes (no log when None).
    ``history_size``: records kept in memory per loss (older ones are dropped
    from memory, not from the log). ``sync_every``: None (default) converts
    pending records only when values are read or the log is flushed; an int
    also converts every that many records (one device sync each time).

    Upstream keywords: ``config`` (its ``common.device``, when it names one,
    is where ``register_loss_fn`` moves module losses), ``enable_logging``
    (= ``log_losses``) and ``history_buffer_size`` (= ``history_size``).
    """

    def __init__(
        self,
        experiment_dir: str | Path | None = None,
        history_size: int = 10_000,
        log_losses: bool = True,
        sync_every: int | None = None,
        *,
        config: Any = None,
        enable_logging: bool | None = None,
        history_buffer_size: int | None = None,
    ) -> None:
        if history_buffer_size is not None:
            history_size = history_buffer_size
        if enable_logging is not None:
            log_losses = enable_logging
        check_int("history_size", history_size)
        if sync_every is not None:
            check_int("sync_every", sync_every)
        self.history_size = history_size
        self.sync_every = sync_every
        self.config = config
        self.device = _config_device(config)
        self._losses: dict[str, RegisteredLoss] = {}
        self._latest: dict[str, _Latest] = {}
        self._history: dict[str, deque[Record]] = {}
        self._steps: dict[str, int] = {}
        self._pending: list[_Pending] = []
        self._unlogged: dict[str, dict[str, list[Any]]] = {}
        self._log = LossLog(experiment_dir) if (log_losses and experiment_dir is not None) else None

    # -- registration ---------------------------------------------------------------

    def register_loss(
        self,
        name: str,
        function: LossFunction,
        weight: float = 1.0,
        schedule: Callable[[float], float] | None = None,
        tags: Iterable[str] = (),
    ) -> None:
        """Add a loss under a new ``name``; reusing a name is an error, not an overwrite."""
        self.add(name, RegisteredLoss(function, weight, schedule, tuple(tags)))

    def register_loss_fn(
        self,
        loss_name: str,
        loss_fn: LossFunction,
        loss_weight: float = 1.0,
        schedule: Callable[[float], float] | None = None,
        tags: Iterable[str] | None = None,
    ) -> None:
        """Upstream's name for :meth:`register_loss`; module losses go to the config's device."""
        if isinstance(loss_fn, nn.Module) and self.device is not None:
            loss_fn = loss_fn.to(self.device)
        self.register_loss(loss_name, loss_fn, loss_weight, schedule, tags or ())

    def add(self, name: str, loss: RegisteredLoss) -> None:
        """Register a ready-made ``RegisteredLoss`` (what specs return)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"loss name must be a non-empty string, got {name!r}")
        if name in self._losses:
            raise ValueError(
                f"loss {name!r} is already registered (registered: {list(self._losses)})"
            )
        loss = validated_loss(name, loss)
        self._losses[name] = loss
        self._history[name] = deque(maxlen=self.history_size)
        self._steps[name] = 0
        if self._log is not None:
            self._steps[name] = self._log.last_steps().get(name, -1) + 1
            self._log.describe_loss(name, describe_loss(loss))

    def init_from_spec(
        self, spec_fn: Callable[..., Mapping[str, RegisteredLoss]], *args: Any, **kwargs: Any
    ) -> None:
        """Register every loss of ``spec_fn(*args, **kwargs)`` -> ``{name: RegisteredLoss}``."""
        spec = spec_fn(*args, **kwargs)
        if not isinstance(spec, Mapping):
            raise TypeError(
                f"loss spec {spec_fn!r} must return a dict of RegisteredLoss, got {spec!r}"
            )
        clashes = [name for name in spec if name in self._losses]
        if clashes:
            raise ValueError(f"losses {clashes} are already registered (registered: {self.names})")
        for name, loss in spec.items():
            validated_loss(name, loss)  # all or nothing: check every loss before adding any
        for name, loss in spec.items():
            self.add(name, loss)

    @property
    def names(self) -> list[str]:
        """Registered loss names, in registration order."""
        return list(self._losses)

    def __contains__(self, name: object) -> bool:
        return name in self._losses

    def __len__(self) -> int:
        return len(self._losses)

    def to(self, device: torch.device | str) -> LossManager:
        """Move loss functions that are modules (e.g. VGG) to ``device``."""
        for loss in self._losses.values():
            if isinstance(loss.function, nn.Module):
                loss.function.to(device)
        return self

    # -- computing ------------------------------------------------------------------

    def weight_at(self, name: str, epoch: float) -> float:
        """The weight ``name`` gets at ``epoch``: its schedule's value, else its static weight."""
        loss = self._get(name)
        if loss.schedule is None:
            return float(loss.weight)
        weight = loss.schedule(epoch)
        if not is_number(weight, finite=True):
            raise ValueError(f"schedule of loss {name!r} returned {weight!r} at epoch {epoch!r}")
        return float(weight)

    def compute_loss_xy(
        self,
        loss_name: str,
        x: Tensor,
        y: Tensor,
        epoch: float = 0.0,
        *,
        step: int | None = None,
        record: bool = True,
    ) -> Tensor:
        """Return ``weight_at(epoch) * f(x, y)`` and record it (``record=False`` for validation).

        ``step`` defaults to a per-loss counter that continues across resumes.
        Recording keeps the detached tensor: no value is copied to the host here.
        """
        name = loss_name
        loss = self._get(name)
        weight = self.weight_at(name, epoch)
        raw = loss.function(x, y)
        if not isinstance(raw, Tensor) or raw.ndim != 0:
            got = tuple(raw.shape) if isinstance(raw, Tensor) else type(raw).__name__
            raise ValueError(f"loss {name!r} must return a scalar tensor, got {got}")
        if record:
            self._record(name, raw.detach(), weight, epoch, step)
        return raw * weight

    def _record(
        self, name: str, raw: Tensor, weight: float, epoch: float, step: int | None
    ) -> None:
        if step is None:
            step = self._steps[name]
        self._steps[name] = step + 1
        self._latest[name] = _Latest(raw, weight)
        self._pending.append(_Pending(name, epoch, step, raw, weight))
        if self.sync_every is not None and len(self._pending) >= self.sync_every:
            self._drain()

    def read_back(self, tensors: Sequence[Tensor] = ()) -> list[float]:
        """``tensors`` as floats, converted together with the pending records.

        For a step that reads values anyway (a display step): one
        device-to-host transfer per device for both, so recording never adds
        a sync of its own. The pending records go to the history and the log.
        """
        pending, self._pending = self._pending, []
        values = to_floats([p.raw for p in pending] + list(tensors))
        self._store(pending, values[: len(pending)])
        return values[len(pending) :]

    def _drain(self) -> None:
        """Convert all pending tensors to floats in one transfer; feed history and log."""
        if self._pending:
            self.read_back()

    def _store(self, pending: list[_Pending], values: list[float]) -> None:
        for p, raw in zip(pending, values, strict=True):
            self._history[p.name].append(Record(p.epoch, p.step, raw, p.weight))
            if self._log is not None:
                cols = self._unlogged.setdefault(p.name, {f: [] for f in FIELDS})
                for field, value in zip(FIELDS, (p.epoch, p.step, raw, p.weight), strict=True):
                    cols[field].append(value)

    # -- reading --------------------------------------------------------------------

    def get_loss_values(
        self,
        query: Iterable[str] | None = None,
        precision: int | None = None,
        *,
        weighted: bool = True,
    ) -> dict[str, float]:
        """Most recent value per loss matching ``query``, in registration order.

        Values are *weighted* (what the optimiser sees) unless ``weighted=False``.
        ``query`` items match tags (e.g. ``'G'``) or names; None means all.
        Losses not computed yet are left out: before any step this is ``{}``.
        Reading converts the pending records too, in the same transfer.
        """
        tensors = self.get_loss_tensors(query, weighted=weighted)
        if not tensors:
            return {}
        values = self.read_back(list(tensors.values()))
        if precision is not None:
            check_int("precision", precision, minimum=0)
            values = [round(v, precision) for v in values]
        return dict(zip(tensors, values, strict=True))

    def get_loss_tensors(
        self, query: Iterable[str] | None = None, *, weighted: bool = True
    ) -> dict[str, Tensor]:
        """Latest values as detached tensors on their device (e.g. to all-reduce under DDP)."""
        out = {}
        for name in self._select(query):
            if name in self._latest:
                latest = self._latest[name]
                out[name] = latest.raw * latest.weight if weighted else latest.raw
        return out

    def get_loss_weights(
        self, query: Iterable[str] | None = None, precision: int | None = None
    ) -> dict[str, float]:
        """The weight applied at each loss's most recent computation (rounded to ``precision``)."""
        weights = {
            name: self._latest[name].weight for name in self._select(query) if name in self._latest
        }
        if precision is not None:
            check_int("precision", precision, minimum=0)
            weights = {name: round(w, precision) for name, w in weights.items()}
        return weights

    def get_registered_losses(
        self, query: Iterable[str] | None = None, strip: bool = True
    ) -> dict[str, RegisteredLoss]:
        """Upstream's lookup: ``{name: RegisteredLoss}`` for the losses matching ``query``.

        ``strip`` is accepted for upstream code: a ``RegisteredLoss`` never
        carries its history here (``get_history`` has it), so there is nothing to strip.
        """
        del strip
        return {name: self._losses[name] for name in self._select(query)}

    def get_history(self, name: str) -> list[Record]:
        """Recorded (epoch, step, raw, weight) for ``name``, oldest first, at most ``history_size``."""
        self._get(name)
        self._drain()
        return list(self._history[name])

    def _select(self, query: Iterable[str] | None) -> list[str]:
        if query is None:
            return list(self._losses)
        if isinstance(query, str):
            query = [query]
        wanted = set(query)
        known = {tag for loss in self._losses.values() for tag in loss.tags} | set(self._losses)
        unknown = wanted - known
        if unknown:
            raise ValueError(
                f"loss query {sorted(unknown)} matches no tag or name; "
                f"tags: {sorted(known - set(self._losses))}, names: {list(self._losses)}"
            )
        return [n for n, loss in self._losses.items() if n in wanted or wanted & set(loss.tags)]

    def _get(self, name: str) -> RegisteredLoss:
        try:
            return self._losses[name]
        except KeyError:
            raise KeyError(
                f"unknown loss {name!r}; registered losses: {list(self._losses)}"
            ) from None

    # -- printing -------------------------------------------------------------------

    def print_losses(
        self, epoch: float, iter: int, query: Iterable[str] | None = None, precision: int = 4
    ) -> str:
        """Print (and return) one line: weighted value and, where weight != 1, raw x weight."""
        raw = self.get_loss_values(query, weighted=False)
        parts = []
        for name, value in raw.items():
            weight = self._latest[name].weight
            text = f"{name} {value * weight:.{precision}g}"
            if weight != 1.0:
                text += f" (= {value:.{precision}g} x {weight:g})"
            parts.append(text)
        line = f"[epoch {epoch} | iter {iter}] " + (
            " | ".join(parts) if parts else "no losses computed yet"
        )
        print(line)
        return line

    def print_weights(self, epoch: float | None = None) -> str:
        """Print (and return) each loss's tags, weight or schedule, and the weight at ``epoch``."""
        lines = []
        for name, loss in self._losses.items():
            how = (
                f"schedule {describe_loss(loss)['schedule']}"
                if loss.schedule
                else f"weight {loss.weight:g}"
            )
            now = (
                f" -> {self.weight_at(name, epoch):g} at epoch {epoch}" if epoch is not None else ""
            )
            lines.append(f"{name} [{','.join(loss.tags)}]: {how}{now}")
        text = "\n".join(lines) if lines else "no losses registered"
        print(text)
        return text

    # -- resuming -------------------------------------------------------------------

    def step_counts(self) -> dict[str, int]:
        """Per loss, the step the next record gets: a mid-epoch checkpoint keeps these."""
        return dict(self._steps)

    def restore_step_counts(self, counts: Mapping[str, int]) -> None:
        """Continue the per-loss step counts of a checkpoint (names it lacks keep theirs)."""
        for name in self._steps:
            if name in counts:
                self._steps[name] = int(counts[name])

    # -- log ------------------------------------------------------------------------

    def flush_log(self) -> Path | None:
        """Write everything recorded so far to the loss log (atomic; cost ~ new records only)."""
        self._drain()
        if self._log is None:
            return None
        segment = self._log.write_segment(self._unlogged)
        self._unlogged = {}  # only now: a failed write keeps the records for the next flush
        self._log.write_index()
        return segment

    def update_loss_log(self, silent: bool = True, capture: bool = False) -> str | None:
        """Upstream's name for :meth:`flush_log`; ``silent=False`` prints (or, with
        ``capture``, returns) where the records went."""
        segment = self.flush_log()
        if silent:
            return None
        message = f"LossManager: loss log updated ({segment or 'nothing new'})"
        if capture:
            return message
        print(message)
        return None

    def end_epoch(self, epoch: float) -> Path | None:
        """Hook for the end of an epoch: flush the log. ``epoch`` is for symmetry/debugging."""
        del epoch
        return self.flush_log()


def to_floats(tensors: list[Tensor]) -> list[float]:
    """Scalars to floats with one device-to-host copy per device (one sync), not one per value."""
    out: list[float] = [0.0] * len(tensors)
    by_device: dict[torch.device, list[int]] = {}
    for i, tensor in enumerate(tensors):
        by_device.setdefault(tensor.device, []).append(i)
    for indices in by_device.values():
        stacked = torch.stack([tensors[i].float() for i in indices]).cpu().tolist()
        for i, value in zip(indices, stacked, strict=True):
            out[i] = value
    return out


def _config_device(config: Any) -> torch.device | None:
    """The device an (upstream-style) config names in ``common.device``; None for 'auto'/none."""
    common = (
        config.get("common") if isinstance(config, Mapping) else getattr(config, "common", None)
    )
    name = common.get("device") if isinstance(common, Mapping) else getattr(common, "device", None)
    if not isinstance(name, str) or name == "auto":
        return None
    try:
        return torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(
            f"config common.device: expected a torch device name, got {name!r}"
        ) from exc
