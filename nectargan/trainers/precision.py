"""Device choice and mixed precision: only the combinations that are valid on the device.

* CUDA: fp16 autocast with one ``GradScaler`` per network (each optimizer steps on
  its own schedule, so sharing one scaler would let D's overflow skip G's step),
  or bf16 autocast without a scaler.
* CPU: optional bf16 autocast, never a scaler and never a CUDA API call, so a
  CPU-only machine sees no CUDA warnings.

``train.mixed_precision``: ``'auto'`` (fp16 on CUDA; bf16 on a CPU that reports
native bf16 support, else off), ``'off'``, ``'bf16'``, ``'fp16'`` (CUDA only).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from nectargan.config.schema import PRECISION_MODES
from nectargan.errors import ConfigUserError

MODES = PRECISION_MODES  # the schema's train.mixed_precision choices


def resolve_device(name: str) -> torch.device:
    """``'auto'`` picks CUDA when available; anything else must name an existing device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ConfigUserError(
            f"common.device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}"
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigUserError(
            f"common.device: {name!r} needs CUDA, which this machine does not have; use 'cpu' or 'auto'"
        )
    if device.type not in ("cpu", "cuda"):
        raise ConfigUserError(f"common.device: expected 'auto', 'cpu' or 'cuda[:N]', got {name!r}")
    return device


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 kernels (AVX512-BF16/AMX), where bf16 pays off."""
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):
        return False
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    return "AVX512" in capability.upper()


@dataclass(frozen=True)
class Precision:
    """How forward passes run: autocast dtype (None = fp32) and whether losses are scaled."""

    device_type: str
    dtype: torch.dtype | None
    use_scaler: bool

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward-pass context: autocast when enabled, a no-op otherwise."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def make_scaler(self) -> GradScalerLike:
        """A fresh scaler for one network (a pass-through one when no scaling is needed)."""
        if self.use_scaler:
            return torch.amp.GradScaler("cuda")
        return NoScaler()


def resolve_precision(mode: str, device: torch.device) -> Precision:
    """Turn ``train.mixed_precision`` into a valid policy for ``device`` (or a clear error)."""
    if mode not in MODES:
        raise ConfigUserError(f"train.mixed_precision: expected one of {list(MODES)}, got {mode!r}")
    if device.type == "cuda":
        if mode in ("auto", "fp16"):
            return Precision("cuda", torch.float16, use_scaler=True)
        if mode == "bf16":
            return Precision("cuda", torch.bfloat16, use_scaler=False)
        return Precision("cuda", None, use_scaler=False)
    if mode == "fp16":
        raise ConfigUserError(
            f"train.mixed_precision: 'fp16' needs a CUDA device, but training runs on {device}; "
            "use 'bf16', 'auto' or 'off'"
        )
    if mode == "bf16" and not cpu_supports_bf16():
        warnings.warn(
            "train.mixed_precision='bf16' on a CPU without native bf16 support: it works, "
            "but is likely slower than fp32",
            stacklevel=2,
        )
    on = mode == "bf16" or (mode == "auto" and cpu_supports_bf16())
    return Precision(device.type, torch.bfloat16 if on else None, use_scaler=False)


class NoScaler:
    """Same interface as ``GradScaler`` for the paths that need no loss scaling."""

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        return loss

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.step()

    def update(self) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


GradScalerLike = torch.amp.GradScaler | NoScaler


@contextlib.contextmanager
def eval_mode(*modules: torch.nn.Module) -> Iterator[None]:
    """Put modules in eval mode and restore each one's previous mode afterwards."""
    previous = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, was_training in zip(modules, previous, strict=True):
            m.train(was_training)
