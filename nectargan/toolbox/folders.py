"""The New-run page's folder picker and dataset check, confined to the Toolbox's roots.

The picker lists one folder at a time (its subfolders, and files of one
suffix when picking a config file); every path it is asked about goes through
:func:`~nectargan.toolbox.paths.confine` first, so ``..``, absolute paths and
symlinks out of a root are refused before anything is listed or read. The
dataset check is the dataset package's own layout survey, not a second one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nectargan.dataset.io import SPLITS
from nectargan.dataset.layout import survey_layout
from nectargan.toolbox.paths import PathRefused, confine, inside

# A folder with 100,000 files is listed by its first entries, with a note.
MAX_ENTRIES = 500


@dataclass
class Listing:
    """One folder as the picker shows it."""

    path: str  # "" for the list of roots
    parent: str | None  # None at a root (the roots list is above it)
    folders: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _entry(path: Path) -> dict[str, Any]:
    """A subfolder, marked when it looks like a dataset (a train/ folder inside)."""
    return {"name": path.name, "path": str(path), "dataset": (path / "train").is_dir()}


def list_roots(roots: Sequence[Path]) -> Listing:
    return Listing("", None, [_entry(root) for root in roots])


def _visible(path: Path, roots: Sequence[Path]) -> bool:
    """Shown in a listing: not hidden, and (for symlinks) pointing inside a root."""
    if path.name.startswith("."):
        return False
    try:
        return inside(path.resolve(), roots)
    except OSError:
        return False


def browse(raw: str, roots: Sequence[Path], suffix: str | None = None) -> Listing:
    """The subfolders (and ``suffix`` files) of the folder ``raw``, which must be in a root."""
    if not raw:
        return list_roots(roots)
    folder = confine(raw, roots)
    if not folder.is_dir():
        raise PathRefused(f"path {raw!r}: expected a folder")
    parent = None if folder in roots else str(folder.parent)
    listing = Listing(str(folder), parent)
    entries = sorted(folder.iterdir(), key=lambda p: p.name.lower())
    listing.truncated = len(entries) > MAX_ENTRIES
    for path in entries[:MAX_ENTRIES]:
        if not _visible(path, roots):
            continue
        if path.is_dir():
            listing.folders.append(_entry(path))
        elif suffix and path.suffix.lower() == suffix and path.is_file():
            listing.files.append(path.name)
    return listing


def browse_answer(raw: str, roots: Sequence[Path], suffix: str | None = None) -> tuple[dict, int]:
    """A picker's request answered: (the listing or ``{"error": ...}``, HTTP status)."""
    try:
        return browse(raw, roots, suffix).to_dict(), 200
    except PathRefused as exc:
        return {"error": str(exc)}, 403
    except OSError as exc:
        return {"error": f"cannot list it: {exc.strerror}"}, 404


@dataclass
class DatasetCheck:
    """What the page shows under the dataset root before Start."""

    path: str
    pairs: dict[str, int]
    pair_size: str  # "256x256 px" (one of A or B), or "" when unknown
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_dataset(raw: str, roots: Sequence[Path]) -> DatasetCheck:
    """The layout survey of the dataset folder ``raw`` (confined to the roots)."""
    folder = confine(raw, roots)
    if not folder.is_dir():
        return DatasetCheck(str(folder), {}, "", [f"'{folder}' is not a folder"])
    survey = survey_layout(folder)
    sizes = {survey.pair_size(split) for split in SPLITS if survey.pair_size(split)}
    shown = ", ".join(f"{w}x{h} px" for w, h in sorted(s for s in sizes if s))
    return DatasetCheck(str(folder), dict(survey.counts), shown, list(survey.problems))


# Config keys that name files or folders: each must lie inside a root before a run starts.
PATH_KEYS = (
    "common.output_directory",
    "dataloader.dataroot",
    "train.loss.vgg_weights",
    "train.resume.experiment_dir",
)


def _get(config_dict: dict[str, Any], key: str) -> Any:
    section, *rest = key.split(".")
    node = config_dict[section]
    for part in rest:
        node = node[part]
    return node


def check_run_paths(
    config_dict: dict[str, Any], roots: Sequence[Path]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(each path key made absolute, problems by key): paths outside the roots, and the
    dataset's layout problems, which must be fixed before Start."""
    absolute: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for key in PATH_KEYS:
        raw = _get(config_dict, key)
        if raw is None:
            continue
        try:
            absolute[key] = str(confine(raw, roots))
        except PathRefused as exc:
            errors[key] = [str(exc)]
    dataroot = absolute.get("dataloader.dataroot")
    if dataroot:
        survey = check_dataset(dataroot, roots)
        if survey.problems:
            errors["dataloader.dataroot"] = survey.problems
    return absolute, errors
