"""Which files ``nectargan infer`` reads, and turning each into the model's input image.

A file named on the command line must be a readable image (or the run stops naming
it). Files found by listing a folder or expanding a glob are candidates: those that do
not decode (a notes.txt, a truncated PNG) are skipped and reported together once, so
one bad file does not sink a batch job and none vanishes silently.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from nectargan.dataset.io import ImageReadError, convert_mode, load_image, unreadable_kind
from nectargan.dataset.paired_dataset import split_pair
from nectargan.errors import DataUserError

GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputItem:
    """One image to run: where it is and its output name relative to the output folder."""

    path: Path
    out_name: Path  # e.g. Path('cat.png') or Path('sub/cat.png') for --recursive folders
    named: bool  # named on the command line (must be readable) vs found in a folder/glob


@dataclass
class InputSet:
    items: list[InputItem] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _folder_files(folder: Path, recursive: bool) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    files = (p for p in folder.glob(pattern) if p.is_file())
    return sorted(
        (p for p in files if not any(part.startswith(".") for part in p.relative_to(folder).parts)),
        key=lambda p: p.relative_to(folder).as_posix(),
    )


def collect_inputs(specs: list[str], recursive: bool = False) -> list[InputItem]:
    """Expand files, folders (non-recursive unless ``recursive``) and globs, in order.

    Output names are the input's stem plus ``.png``; inside a folder taken recursively,
    its subfolders are kept. Two inputs that would write the same output are refused.
    """
    items: list[InputItem] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            for f in _folder_files(path, recursive):
                rel = f.relative_to(path)
                items.append(InputItem(f, rel.with_suffix(".png"), named=False))
        elif path.exists():
            items.append(InputItem(path, Path(path.stem + ".png"), named=True))
        elif GLOB_CHARS & set(spec):
            matches = sorted(glob.glob(spec, recursive=recursive))
            for m in (Path(m) for m in matches):
                if m.is_file() and not m.name.startswith("."):
                    items.append(InputItem(m, Path(m.stem + ".png"), named=False))
        else:
            raise DataUserError(
                f"input {spec!r} does not exist (expected an image, folder or glob)"
            )
    _refuse_duplicates(items)
    return items


def _refuse_duplicates(items: list[InputItem]) -> None:
    seen: dict[Path, Path] = {}
    for item in items:
        other = seen.setdefault(item.out_name, item.path)
        if other != item.path:
            raise DataUserError(
                f"inputs '{other}' and '{item.path}' would both be written as "
                f"'{item.out_name}'; rename one or run them into separate --output folders"
            )


def read_input(
    path: Path, channels: int, paired: bool = False, direction: str = "AtoB"
) -> Image.Image:
    """The image the generator gets: the model's channel count; with ``paired``, its input half.

    Paired files are A|B side by side as in training; the input half is A for AtoB
    runs and B for BtoA, exactly as the dataset picks it. Grayscale, palette and RGBA
    files are converted the way training data is (alpha flattened onto white).
    """
    img = load_image(path, channels)
    if paired:
        a, b = split_pair(img, path)
        img = a if direction == "AtoB" else b
    return convert_mode(img, channels)


def readable_inputs(
    items: list[InputItem], channels: int, paired: bool = False, direction: str = "AtoB"
) -> InputSet:
    """Decode every input once: named unreadable files stop the run, found ones are skipped."""
    result = InputSet()
    for item in items:
        try:
            read_input(item.path, channels, paired, direction)
        except ImageReadError as exc:
            if item.named:
                raise DataUserError(
                    f"input '{item.path}' is not a readable image: {_reason(exc)}"
                ) from exc
            result.skipped.append((item.path, _reason(exc)))
            continue
        result.items.append(item)
    return result


def _reason(exc: BaseException) -> str:
    cause = exc.__cause__
    text = str(cause) if cause is not None else str(exc)
    return text.splitlines()[0] if text else type(cause or exc).__name__


def skipped_warning(skipped: list[tuple[Path, str]], limit: int = 20) -> str:
    """One warning naming every skipped file (the first ``limit`` of each kind) and why.

    Files that are not images at all (a notes.txt) are listed apart from broken
    images: the first are expected beside a dataset, the second need fixing.
    """
    kinds: dict[str, list[tuple[Path, str]]] = {"broken image": [], "not an image": []}
    for path, why in skipped:
        kinds[unreadable_kind(path)].append((path, why))
    lines = []
    for kind, title in (("broken image", "broken image(s)"), ("not an image", "non-image file(s)")):
        files = kinds[kind]
        if not files:
            continue
        lines.append(f"warning: skipped {len(files)} {title}:")
        lines += [
            f"  {path}" + (f": {why}" if kind == "broken image" else "")
            for path, why in files[:limit]
        ]
        if len(files) > limit:
            lines.append(f"  ... and {len(files) - limit} more")
    return "\n".join(lines)
