"""Check that a folder is a usable pix2pix dataset: ``train/`` of readable A|B images, 2:1.

:func:`survey_layout` looks at the whole folder and lists every problem (the
Toolbox shows them before a run starts); :func:`check_layout` is the same
look, raising the first problem (the CLI and the downloader stop on it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from nectargan.dataset.io import (
    SPLITS,
    ImageReadError,
    header_size,
    list_images,
    other_files,
    probe_image,
)
from nectargan.errors import DataUserError

# Fully decoding every image of a 50,000-image set would take minutes; the first
# few of each split are decoded, every file's header is read for its size.
DECODE_PER_SPLIT = 8
# A folder of 50,000 wrong images needs a few examples, not 50,000 lines.
PROBLEMS_PER_SPLIT = 5


class LayoutError(DataUserError):
    """The folder is not a pix2pix dataset (or holds images it cannot use)."""


@dataclass
class LayoutSurvey:
    """What a dataset folder holds: image counts and file sizes per split, and its problems."""

    root: Path
    counts: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, Counter[tuple[int, int]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # Listed apart from the problems: a notes.txt is no broken image, and training
    # resizes odd-sized pairs; both are worth knowing, neither stops a run.
    non_images: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        """A JSON-ready view (sizes as "WxH": count, most common first)."""
        return {
            "root": str(self.root),
            "ok": self.ok,
            "counts": self.counts,
            "sizes": {
                split: {f"{w}x{h}": n for (w, h), n in sizes.most_common()}
                for split, sizes in self.sizes.items()
            },
            "problems": self.problems,
            "non_images": self.non_images,
            "notes": self.notes,
        }

    def lines(self) -> list[str]:
        """The survey as text: one line per split, then problems, non-images and notes."""
        out = []
        for split, n in self.counts.items():
            common = self.sizes[split].most_common(1)
            size = f", {common[0][0][0]}x{common[0][0][1]}" if common else ""
            out.append(f"{split}: {n} pair(s){size}")
        out += [f"problem: {p}" for p in self.problems]
        for split, names in self.non_images.items():
            out.append(f"not images, ignored ({split}/): {_listed(names)}")
        out += [f"note: {n}" for n in self.notes]
        return out

    def pair_size(self, split: str = "train") -> tuple[int, int] | None:
        """The most common (width, height) of one A or B image in ``split`` (half a file)."""
        sizes = self.sizes.get(split)
        if not sizes:
            return None
        (w, h), _ = sizes.most_common(1)[0]
        return w // 2, h


def _listed(names: list[str]) -> str:
    more = len(names) - PROBLEMS_PER_SPLIT
    return ", ".join(names[:PROBLEMS_PER_SPLIT]) + (f" ... and {more} more" if more > 0 else "")


def _odd_sizes(survey: LayoutSurvey, split: str, by_size: dict[tuple[int, int], list[str]]) -> None:
    """A note naming the files whose size differs from the split's most common one."""
    if len(by_size) < 2:
        return
    common = max(by_size, key=lambda s: len(by_size[s]))
    odd = sorted(
        f"{n} ({w}x{h})" for (w, h), names in by_size.items() if (w, h) != common for n in names
    )
    survey.notes.append(
        f"{split}/: {len(odd)} image(s) differ from the usual {common[0]}x{common[1]} "
        f"(training resizes them): {_listed(odd)}"
    )


def _image_problem(path: Path, decode: bool) -> tuple[tuple[int, int] | None, str | None]:
    """(file size, problem) of one image: unreadable, or not twice as wide as high."""
    try:
        w, h = probe_image(path) if decode else header_size(path)
    except ImageReadError as exc:
        return None, str(exc)
    if w != 2 * h:
        return (w, h), f"'{path}' is {w}x{h}; an A|B pair is twice as wide as it is high"
    return (w, h), None


def _survey_split(survey: LayoutSurvey, split: str, stop_early: bool) -> None:
    paths = list_images(survey.root / split)
    sizes: Counter[tuple[int, int]] = Counter()
    by_size: dict[tuple[int, int], list[str]] = {}
    bad = 0
    for i, path in enumerate(paths):
        size, problem = _image_problem(path, decode=i < DECODE_PER_SPLIT)
        if size:
            sizes[size] += 1
            by_size.setdefault(size, []).append(path.name)
        if problem:
            bad += 1
            if bad <= PROBLEMS_PER_SPLIT:
                survey.problems.append(problem)
            if stop_early:
                break
    if bad > PROBLEMS_PER_SPLIT:
        survey.problems.append(f"{split}/: {bad - PROBLEMS_PER_SPLIT} more such images")
    survey.counts[split] = len(paths)
    survey.sizes[split] = sizes
    if not stop_early:
        _odd_sizes(survey, split, by_size)
        others = other_files(survey.root / split)
        if others:
            survey.non_images[split] = others


def survey_layout(root: Path, stop_early: bool = False) -> LayoutSurvey:
    """Counts, sizes and problems of every split present (``stop_early``: at the first problem)."""
    survey = LayoutSurvey(Path(root))
    if not (survey.root / "train").is_dir():
        survey.problems.append(
            f"'{root}' has no train/ folder; expected {root}/train/ (and val/, test/) "
            f"holding side-by-side A|B images"
        )
        return survey
    for split in SPLITS:
        if (survey.root / split).is_dir():
            _survey_split(survey, split, stop_early)
            if stop_early and survey.problems:
                return survey
    if not survey.counts["train"]:
        survey.problems.append(f"'{survey.root / 'train'}' holds no image files")
    return survey


def check_layout(root: Path) -> dict[str, int]:
    """Image counts per split present; raises LayoutError naming the first problem."""
    survey = survey_layout(root, stop_early=True)
    if survey.problems:
        raise LayoutError(survey.problems[0])
    return survey.counts
