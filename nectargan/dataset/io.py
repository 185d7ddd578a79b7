"""Reading and writing image files as PIL images (torch-free; tensors: ``tensors.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from nectargan.errors import ConfigUserError, DataUserError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
CHANNEL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
SPLITS = ("train", "val", "test")
# Transparent pixels have undefined colour, so alpha is flattened onto this.
ALPHA_BACKGROUND = (255, 255, 255)


class ImageReadError(DataUserError, OSError):
    """A file that looks like an image (by extension) could not be decoded."""


def is_image_file(path: Path) -> bool:
    """Images by extension; dot-files are skipped (e.g. macOS '._x.png' resource forks)."""
    return (
        path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")
    )


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name so order is reproducible."""
    return sorted((p for p in Path(folder).iterdir() if is_image_file(p)), key=lambda p: p.name)


def has_images(folder: Path) -> bool:
    """Whether ``folder`` exists and holds an image: an empty split counts as absent."""
    return Path(folder).is_dir() and any(is_image_file(p) for p in Path(folder).iterdir())


def has_image_name(path: Path) -> bool:
    """Whether the file's extension claims an image (it may still not decode)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def other_files(folder: Path) -> list[str]:
    """Names of the files in ``folder`` a dataset ignores (not named as images), to tell the
    user; dot-files (``.DS_Store``, resource forks) are the system's and not listed."""
    return sorted(
        p.name
        for p in Path(folder).iterdir()
        if p.is_file() and not p.name.startswith(".") and not has_image_name(p)
    )


def header_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header alone: cheap, but a truncated file passes."""
    try:
        with Image.open(path) as img:
            return img.size
    except Exception as exc:  # PIL raises many types for broken files
        raise ImageReadError(f"cannot read image file '{path}': {exc}") from exc


def probe_image(path: Path) -> tuple[int, int]:
    """(width, height) after decoding ``path``; raises ImageReadError naming the file.

    A header alone accepts a truncated file, so the pixels are decoded too; JPEGs in
    draft mode (1/8 scale), which still reads every block, at a fraction of the cost.
    """
    try:
        with Image.open(path) as img:
            size = img.size
            if img.format == "JPEG":
                img.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
            img.load()
            return size
    except Exception as exc:  # PIL raises many types for broken files
        raise ImageReadError(f"cannot read image file '{path}': {exc}") from exc


def unreadable_kind(path: Path) -> str:
    """``'broken image'`` for a file named or formatted as an image, else ``'not an image'``.

    A notes.txt beside the images is no broken image; the user fixes the two differently.
    """
    if has_image_name(path):
        return "broken image"
    try:
        with Image.open(path):
            return "broken image"
    except Exception:  # PIL raises many types for files it cannot identify
        return "not an image"


def check_channels(channels: int) -> str:
    if channels not in CHANNEL_MODES:
        raise ConfigUserError(f"channels {channels!r} is not supported; expected one of 1, 3, 4")
    return CHANNEL_MODES[channels]


def convert_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode (L, P, RGBA, I;16, CMYK...) to 1, 3 or 4 channels."""
    mode = check_channels(channels)
    if img.mode == mode:
        return img
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if has_alpha and mode != "RGBA":
        rgba = img.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        img = Image.alpha_composite(flat, rgba)
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        # 16-bit / float greyscale: scale to 8 bits rather than letting PIL clip.
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I") and arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    return img.convert(mode)


def load_image(path: Path, channels: int = 3) -> Image.Image:
    """Fully decode ``path``; any decoding failure becomes an ImageReadError naming the file."""
    check_channels(channels)
    try:
        with Image.open(path) as img:
            img.load()
            return convert_mode(img, channels)
    except Exception as exc:  # PIL raises many types for broken files
        raise ImageReadError(f"cannot read image file '{path}': {exc}") from exc


def side_by_side(a: Image.Image, b: Image.Image) -> Image.Image:
    """Join A (left) and B (right) into one image, the pix2pix storage layout."""
    out = Image.new(a.mode, (a.width + b.width, max(a.height, b.height)))
    out.paste(a, (0, 0))
    out.paste(b.convert(a.mode), (a.width, 0))
    return out
