"""How much memory one generator forward pass needs, from the architecture and the input size.

The estimate walks the U-Net's forward pass level by level, tracking which tensors are
alive (the input, the encoder's skip tensors, the current feature map and the fresh
outputs of conv, norm and activation), and keeps the largest total. It needs only the
numbers an export's metadata carries (channels, ``features``, ``n_downs``, block type,
upsampling), so a checkpoint and an ``.onnx`` file get the same figure.

Measured peaks run above the tensor total: the runtime reorders activations into
blocked layouts and keeps scratch buffers and arenas beside them, onnxruntime more than
torch. ``RUNTIME_OVERHEAD`` covers that per runtime, measured with
``bench/inference_tiles.py`` (figures in docs/benchmarks.md) and rounded up, so the
estimate errs towards tiling.
"""

from __future__ import annotations

from dataclasses import dataclass

from nectargan.inference.model_info import ModelInfo

FLOAT32_BYTES = 4
# pix2pix widens channels up to 8x features and then keeps them flat (models.unet).
MAX_WIDTH_MULT = 8
# Per runtime: (factor on the tensor walk, fixed bytes), fitted on CPU to the peaks of
# bench/inference_tiles.py at 1, 3 and 12 MP and rounded up: torch's peak stays within the
# walk plus about 250 MiB of scratch; onnxruntime's arena holds up to 1.85x the walk.
RUNTIME_OVERHEAD = {"torch": (1.0, 256 * 1024**2), "onnxruntime": (1.85, 64 * 1024**2)}


@dataclass(frozen=True)
class UnetShape:
    """The architecture numbers the walk needs."""

    channels: int
    features: int
    n_downs: int
    residual: bool = False
    bilinear: bool = False

    def width(self, level: int) -> int:
        return self.features * min(2**level, MAX_WIDTH_MULT)


def unet_shape(info: ModelInfo) -> UnetShape | None:
    """The shape behind ``info``; None when the model does not say (a foreign ONNX file)."""
    if info.features is None or info.n_downs < 1:
        return None
    return UnetShape(
        channels=info.channels,
        features=info.features,
        n_downs=info.n_downs,
        residual=info.block_type == "residual",
        bilinear=info.upsample == "bilinear",
    )


def _area(level: int) -> float:
    """Pixels of a level's map per input pixel: each level halves both sides."""
    return 1.0 / 4 ** (level + 1)


def _encoder_peak(shape: UnetShape, live: float) -> tuple[float, float]:
    """(peak, live after the encoder): the skips accumulate; each level makes ~2 fresh maps."""
    peak = live
    for level in range(shape.n_downs):
        out = shape.width(level) * _area(level)
        fresh = 2 * out + (3 * out if shape.residual else 0)
        peak = max(peak, live + fresh)
        live += out
    return peak, live


def _decoder_peak(shape: UnetShape, live: float) -> float:
    """Peak of the decoder: the current map, its upsampled output and the concatenation."""
    peak = live
    h = shape.width(shape.n_downs - 1) * _area(shape.n_downs - 1)
    live -= h  # the bottleneck is ``h`` itself, not a kept skip
    for level in range(shape.n_downs - 1, 0, -1):
        up = shape.width(level - 1) * _area(level - 1)
        skip = shape.width(level - 1) * _area(level - 1)
        upsampled_input = 4 * h if shape.bilinear else 0.0
        fresh = max(2 * up + upsampled_input, up + up + skip) + (3 * up if shape.residual else 0)
        peak = max(peak, live + h + fresh)
        live -= skip
        h = up + skip
    out = shape.channels * 1.0
    peak = max(peak, live + h + 2 * out + (4 * h if shape.bilinear else 0))
    return peak


def elements_per_pixel(shape: UnetShape) -> float:
    """Peak float32 values alive per input pixel during one forward pass (batch of 1)."""
    live = float(shape.channels)  # the input stays referenced by the caller
    encoder_peak, live = _encoder_peak(shape, live)
    return max(encoder_peak, _decoder_peak(shape, live))


def forward_bytes(
    info: ModelInfo, height: int, width: int, batch: int = 1, runtime: str = "torch"
) -> int | None:
    """Estimated peak bytes of one forward pass on a ``batch`` of ``height`` x ``width``."""
    shape = unet_shape(info)
    if shape is None:
        return None
    tensors = elements_per_pixel(shape) * FLOAT32_BYTES * height * width * batch
    # The runner's own copies: the fitted input, the stacked batch and the output.
    io_copies = 3 * shape.channels * FLOAT32_BYTES * height * width * batch
    factor, fixed = RUNTIME_OVERHEAD[runtime]
    return int(tensors * factor + io_copies + fixed)


def image_bytes(channels: int, height: int, width: int) -> int:
    """Whole-image buffers held while tiling: the padded input, the blended sum and its
    weights (float32), and the decoded input, the output array and its PIL image (uint8)."""
    return ((2 * channels + 1) * FLOAT32_BYTES + 3 * channels) * height * width


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# Automatic tiling keeps one pass under this share of the memory free when the run starts.
BUDGET_SHARE = 0.5
SIZE_UNITS = {"": 1024**2, "K": 1024, "M": 1024**2, "G": 1024**3}


def available_bytes(device: str) -> int | None:
    """Memory free now on ``device`` ('cpu', 'cuda', 'cuda:N'); None if it cannot be read."""
    if device.startswith("cuda"):
        try:
            import torch

            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except Exception:  # no torch, no CUDA build, a driver error: no automatic budget
            return None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def default_budget(device: str) -> tuple[int | None, str]:
    """(bytes, how it was chosen) for automatic tiling on ``device``."""
    free = available_bytes(device)
    if free is None:
        return None, "memory available unknown"
    where = "GPU" if device.startswith("cuda") else "RAM"
    return int(free * BUDGET_SHARE), f"half the {format_bytes(free)} of {where} available"


def parse_size(text: str) -> int:
    """``'2G'``, ``'1500M'``, ``'1500'`` (MiB) -> bytes; ValueError naming the text otherwise."""
    word = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = word[-1:] if word[-1:] in ("K", "M", "G") else ""
    number = word[: len(word) - len(unit)]
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"expected a size such as 2G or 1500M, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"expected a size above 0 such as 2G or 1500M, got {text!r}")
    return int(value * SIZE_UNITS[unit])
