"""VGG19 feature extractor loaded from a local weights file (no download, no torchvision).

Perceptual losses compare images in the feature space of an ImageNet-trained
VGG19. The weights (~550 MB) cannot be fetched at run time here, so they come
from a file already on disk: ``vgg_weights`` when set, else the file
torchvision's own download leaves in torch's cache
(``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth``, where upstream
NectarGAN users already have it). torchvision's file works as is
(``features.N.weight``/``.bias`` keys; the classifier is ignored), as does a
bare ``{"N.weight": ...}`` features dict.

The network is built with torchvision's layer numbering, and only up to the
deepest layer the loss uses, so only those layers' weights are required.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from nectargan.errors import ConfigUserError

# torchvision's VGG19 "E" configuration: conv widths, "M" = 2x2 max-pool.
VGG19_CONFIG: tuple[int | str, ...] = (
    *(64, 64, "M", 128, 128, "M"),
    *(256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
WEIGHTS_HINT = (
    "a local VGG19 state_dict file, e.g. torchvision's vgg19-dcbb9e9d.pth "
    "(keys 'features.N.weight'/'features.N.bias')"
)


def vgg19_layer_names() -> list[str]:
    """Names of the ``features`` modules in order: conv1_1, relu1_1, ..., pool5."""
    names: list[str] = []
    block, conv = 1, 1
    for width in VGG19_CONFIG:
        if width == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def expected_shapes(depth: int) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the first ``depth`` feature modules, keyed like ``features``."""
    shapes: dict[str, tuple[int, ...]] = {}
    index, in_ch = 0, 3
    for width in VGG19_CONFIG:
        if index >= depth:
            break
        if width == "M":
            index += 1
            continue
        shapes[f"{index}.weight"] = (int(width), in_ch, 3, 3)
        shapes[f"{index}.bias"] = (int(width),)
        index, in_ch = index + 2, int(width)
    return shapes


def build_vgg19_features(depth: int) -> nn.Sequential:
    """Untrained VGG19 ``features[:depth]`` with torchvision's indices."""
    layers: list[nn.Module] = []
    in_ch = 3
    for width in VGG19_CONFIG:
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(width), kernel_size=3, padding=1), nn.ReLU()]
            in_ch = int(width)
    return nn.Sequential(*layers[:depth])


class VGGWeightsError(ConfigUserError, FileNotFoundError):
    """No usable VGG19 weights file: the user's setting or file to fix, not a bug."""


def torch_cache_weights() -> Path:
    """Where torchvision's VGG19 download lands (``TORCH_HOME`` and XDG rules included)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE


def find_vgg19_weights(configured: str | Path | None) -> Path:
    """``configured`` if set, else torch's cached download; the error says where it looked."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise VGGWeightsError(
                f"train.loss.vgg_weights: VGG19 weights file not found: {str(path)!r}; "
                f"expected {WEIGHTS_HINT}"
            )
        return path
    cached = torch_cache_weights()
    if cached.is_file():
        return cached
    raise VGGWeightsError(
        "train.loss.vgg_weights: not set, and no VGG19 weights where torch keeps downloaded "
        f"ones ({str(cached)!r}); the '+vgg' loss subspecs need pretrained VGG19 weights, "
        f"which cannot be downloaded at run time: set train.loss.vgg_weights to {WEIGHTS_HINT}, "
        "copy that file there, or use a subspec without '+vgg'"
    )


def load_vgg19_state(path: str | Path, depth: int) -> dict[str, Tensor]:
    """Read the weights the first ``depth`` layers need, with clear errors on any mismatch."""
    path = find_vgg19_weights(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code, wrong format...
        raise VGGWeightsError(
            f"could not read VGG19 weights {str(path)!r} ({exc}); expected {WEIGHTS_HINT}"
        ) from exc
    state = _features_only(raw, path)
    wanted = expected_shapes(depth)
    missing = [key for key in wanted if key not in state]  # network order
    if missing:
        raise VGGWeightsError(
            f"VGG19 weights {str(path)!r} lack {['features.' + k for k in missing]}; expected {WEIGHTS_HINT}"
        )
    for key, shape in wanted.items():
        if tuple(state[key].shape) != shape:
            raise VGGWeightsError(
                f"VGG19 weights {str(path)!r}: 'features.{key}' has shape {tuple(state[key].shape)}, "
                f"expected {shape}"
            )
    return {key: state[key].float() for key in wanted}


def _features_only(raw: object, path: Path) -> dict[str, Tensor]:
    """Strip an optional ``state_dict`` wrapper and ``features.`` prefix; drop the classifier."""
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping):
        raise VGGWeightsError(
            f"VGG19 weights {str(path)!r} hold a {type(raw).__name__}; expected {WEIGHTS_HINT}"
        )
    state: dict[str, Tensor] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            continue
        short = key.removeprefix("module.").removeprefix("features.")
        if short.split(".")[0].isdigit():
            state[short] = value
    return state


class VGG19Features(nn.Module):
    """Frozen VGG19 returning the activations of chosen layers, for inputs in ``[-1, 1]``."""

    def __init__(self, weights_path: str | Path, layers: Sequence[str]) -> None:
        super().__init__()
        names = vgg19_layer_names()
        unknown = [name for name in layers if name not in names]
        if not layers or unknown:
            raise ValueError(
                f"VGG19 layers {list(layers)!r} invalid (unknown: {unknown}); valid: {names}"
            )
        self.indices = sorted({names.index(name) for name in layers})
        depth = self.indices[-1] + 1
        self.features = build_vgg19_features(depth)
        self.features.load_state_dict(load_vgg19_state(weights_path, depth))
        self.features.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def train(self, mode: bool = True) -> VGG19Features:
        """Stay in eval mode: the extractor is a fixed measuring instrument."""
        return super().train(False)

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(
                f"VGG19 features need images shaped (N, 1 or 3, H, W), got {tuple(x.shape)}"
            )
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        x = ((x + 1) / 2 - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.indices:
                outputs.append(x)
        return outputs
