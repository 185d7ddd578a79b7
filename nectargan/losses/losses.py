"""Loss functions ``f(x, y) -> scalar tensor`` used by the objective specs.

Every function takes the prediction ``x`` and the target ``y`` (for the
adversarial terms: discriminator logits and a same-shaped tensor of 0/1
labels) and checks that their shapes agree, because torch's own losses would
silently broadcast a ``(N, 1, H, W)`` against a ``(N, 3, H, W)``.

The structure losses (Sobel, Laplacian) compare *edge maps* of ``x`` and ``y``
obtained with fixed, non-learned convolution kernels, applied per channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nectargan.losses.vgg import VGG19Features, vgg19_layer_names

# Perceptual layers and their weights: deeper layers carry more semantic content.
DEFAULT_VGG_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEFAULT_VGG_LAYER_WEIGHTS: tuple[float, ...] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)

SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def check_pair(x: Tensor, y: Tensor, what: str) -> None:
    """Refuse mismatched shapes up front instead of broadcasting them."""
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise TypeError(f"{what} needs two tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.shape != y.shape:
        raise ValueError(
            f"{what}: prediction shape {tuple(x.shape)} != target shape {tuple(y.shape)}"
        )


def bce_with_logits_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Adversarial loss on raw discriminator outputs (stable: no separate sigmoid)."""
    check_pair(logits, labels, "BCE-with-logits loss")
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def l1_loss(x: Tensor, y: Tensor) -> Tensor:
    """Mean absolute error: pix2pix's low-frequency term, less blurry than L2."""
    check_pair(x, y, "L1 loss")
    return F.l1_loss(x, y)


def mse_loss(x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error: punishes large per-pixel errors harder than L1."""
    check_pair(x, y, "L2 (MSE) loss")
    return F.mse_loss(x, y)


class _FixedKernelLoss(nn.Module):
    """L1 between per-channel filter responses of ``x`` and ``y``."""

    def __init__(self, kernels: Sequence[Sequence[Sequence[float]]], what: str) -> None:
        super().__init__()
        self.what = what
        weight = torch.tensor(kernels, dtype=torch.float32).unsqueeze(1)  # (K, 1, 3, 3)
        self.register_buffer("kernels", weight, persistent=False)

    def filter(self, image: Tensor) -> Tensor:
        """Apply every kernel to every channel; replicate-pad so borders are not edges."""
        n, c, h, w = image.shape
        kernels = self.kernels.to(device=image.device, dtype=image.dtype)
        padded = F.pad(image.reshape(n * c, 1, h, w), (1, 1, 1, 1), mode="replicate")
        return F.conv2d(padded, kernels)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        check_pair(x, y, self.what)
        if x.ndim != 4:
            raise ValueError(f"{self.what} needs images shaped (N, C, H, W), got {tuple(x.shape)}")
        return F.l1_loss(self.filter(x), self.filter(y))


class SobelLoss(_FixedKernelLoss):
    """Match first-order edges (horizontal and vertical Sobel gradients)."""

    def __init__(self) -> None:
        sobel_y = tuple(zip(*SOBEL_X, strict=True))  # the transpose
        super().__init__((SOBEL_X, sobel_y), "Sobel loss")


class LaplacianLoss(_FixedKernelLoss):
    """Match second-order structure (fine detail and texture)."""

    def __init__(self) -> None:
        super().__init__((LAPLACIAN,), "Laplacian loss")


class VGGPerceptualLoss(nn.Module):
    """Weighted L1 between VGG19 activations of ``x`` and ``y`` (images in ``[-1, 1]``)."""

    def __init__(
        self,
        weights_path: str | Path,
        layers: Sequence[str] = DEFAULT_VGG_LAYERS,
        layer_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        layers = list(layers)
        if layer_weights is None:
            layer_weights = (
                DEFAULT_VGG_LAYER_WEIGHTS
                if tuple(layers) == DEFAULT_VGG_LAYERS
                else [1.0] * len(layers)
            )
        if len(layer_weights) != len(layers):
            raise ValueError(
                f"VGG layer_weights {list(layer_weights)!r} must have one weight per layer {layers!r}"
            )
        if len(set(layers)) != len(layers):
            raise ValueError(f"VGG layers {layers!r} contain duplicates")
        self.vgg = VGG19Features(weights_path, layers)  # validates the names
        position = {name: i for i, name in enumerate(vgg19_layer_names())}
        pairs = sorted(zip(layers, layer_weights, strict=True), key=lambda p: position[p[0]])
        self.layer_weights = [float(weight) for _, weight in pairs]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        check_pair(x, y, "VGG perceptual loss")
        if self.vgg.mean.device != x.device:
            self.vgg.to(x.device)  # once: follow the trainer's device without extra wiring
        with torch.no_grad():
            targets = self.vgg(y)
        total = x.new_zeros(())
        for weight, fx, fy in zip(self.layer_weights, self.vgg(x), targets, strict=True):
            total = total + weight * F.l1_loss(fx, fy)
        return total
