"""What the Dataset page does, each through the code of the CLI command it stands for.

Layout check: ``survey_layout`` (``data check``); download: ``download_dataset``
(``data download``); pair and split: ``plan_pair``/``pair_folders`` and
``plan_split``/``split_dataset`` (``data pair|split --dry-run``); preview:
``make_dataset`` + ``render_preview`` (``data preview``); measures, pages,
thumbnails, exclude and restore: ``nectargan.dataset.measures`` / ``pairs``
(``data measures|exclude|restore``). Every path arrives from the browser and is
confined to the roots first.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nectargan.dataset.io import SPLITS
from nectargan.errors import UserError
from nectargan.toolbox.paths import PathRefused, confine

PREVIEW_MAX_SIDE = 1024  # load_size/crop_size a page may ask for
EXPECTED_LAYOUT = (
    "expected a dataset folder holding train/ (and val/, test/) of side-by-side A|B images"
)


class BadInput(UserError):
    """A form value the page sent that cannot be used; the message names it."""


def folder_in_roots(raw: Any, roots: Sequence[Path], what: str = "path") -> Path:
    """A path from the browser, resolved and inside a root (``..`` and links out refused)."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadInput(f"{what}: expected a folder inside the Toolbox's roots")
    if ".." in Path(raw).parts:
        raise PathRefused(f"{what} {raw!r}: '..' is not allowed; name the folder itself")
    return confine(raw, roots)


def dataset_root(raw: Any, roots: Sequence[Path]) -> Path:
    """An existing dataset folder with ``train/``; otherwise says the layout expected."""
    root = folder_in_roots(raw, roots, "dataset folder")
    if not root.is_dir():
        raise BadInput(f"dataset folder '{root}' does not exist; {EXPECTED_LAYOUT}")
    if not (root / "train").is_dir():
        raise BadInput(f"'{root}' has no train/ folder; {EXPECTED_LAYOUT}")
    return root


def split_arg(raw: Any) -> str:
    if raw not in SPLITS:
        raise BadInput(f"split {raw!r}: expected one of {', '.join(SPLITS)}")
    return str(raw)


def int_arg(raw: Any, what: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadInput(f"{what} {raw!r}: expected a whole number {low}-{high}") from None
    if not low <= value <= high:
        raise BadInput(f"{what} {value}: expected {low}-{high}")
    return value


def survey(raw: Any, roots: Sequence[Path]) -> dict[str, Any]:
    from nectargan.dataset.layout import survey_layout

    root = folder_in_roots(raw, roots, "dataset folder")
    if not root.is_dir():
        raise BadInput(f"dataset folder '{root}' does not exist; {EXPECTED_LAYOUT}")
    return survey_layout(root).to_dict()


# -- augmentation preview --------------------------------------------------------------


def augmentation_form() -> dict[str, Any]:
    """The fourteen augmentations as the page builds its form: order, defaults, each field's
    schema (type, bounds, choices, description), straight from the config schema."""
    from nectargan.config.augment_schema import AUGMENTATIONS, AugmentConfig

    schema = AugmentConfig.model_json_schema()
    defs = schema.get("$defs", {})
    fields = {}
    for name in AUGMENTATIONS:
        ref = schema["properties"][name].get("$ref", "")
        fields[name] = {
            "description": schema["properties"][name].get("description", ""),
            "properties": defs.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}),
        }
    return {
        "order": list(AUGMENTATIONS),
        "defaults": AugmentConfig().to_dict(),
        "fields": fields,
        "random_crop": schema["properties"]["random_crop"].get("description", ""),
    }


def _preview_dataloader(body: Mapping[str, Any]) -> dict[str, Any]:
    """The dataloader settings a preview needs, the defaults unless the page set them."""
    from nectargan.config.augment_schema import augment_problems
    from nectargan.config.config import Config

    dl = Config.load(None).dataloader
    load = int_arg(body.get("load_size", dl["load_size"]), "load_size", 8, PREVIEW_MAX_SIDE)
    crop = int_arg(body.get("crop_size", dl["crop_size"]), "crop_size", 8, load)
    augment = body.get("augment", {})
    problems = augment_problems(augment)
    if problems:
        raise BadInput("; ".join(problems))
    return {
        "direction": dl["direction"],
        "channels": dl["channels"],
        "load_size": load,
        "crop_size": crop,
        "augment": augment,
    }


def preview(body: Mapping[str, Any], roots: Sequence[Path]) -> dict[str, Any]:
    """The ``data preview`` grid for the page's settings, as a data: URL (CSP allows those)."""
    from nectargan.dataset.preview import MAX_COLUMNS, MAX_PAIRS, encode, render_preview
    from nectargan.trainers.data import make_dataset

    root = dataset_root(body.get("path"), roots)
    split = split_arg(body.get("split", "train"))
    n = int_arg(body.get("n", 8), "n", 1, MAX_PAIRS)
    columns = int_arg(body.get("columns", 0), "columns", 0, MAX_COLUMNS)
    seed = int_arg(body.get("seed", 0), "seed", 0, 2**31 - 1)
    dataloader = _preview_dataloader(body)
    dataset = make_dataset(dataloader, root, split, train=split == "train")
    shown = render_preview(dataset, n, seed, columns)
    data = base64.b64encode(encode(shown.grid, "JPEG")).decode("ascii")
    return {
        "image": f"data:image/jpeg;base64,{data}",
        "shown": shown.shown,
        "note": shown.note,
        "size": list(shown.grid.size),
    }


# -- pair and split ----------------------------------------------------------------------


def pair_plan(body: Mapping[str, Any], roots: Sequence[Path], task=None):
    from nectargan.dataset.tools import plan_pair

    a = folder_in_roots(body.get("a"), roots, "A folder")
    b = folder_in_roots(body.get("b"), roots, "B folder")
    out = folder_in_roots(body.get("out"), roots, "output folder")
    return plan_pair(a, b, out, resize=bool(body.get("resize")), task=task)


def _ratios(raw: Any) -> list[float]:
    try:
        ratios = [float(r) for r in raw]
    except (TypeError, ValueError):
        raise BadInput(f"ratios {raw!r}: expected three numbers (train val test)") from None
    if len(ratios) != 3 or not all(math.isfinite(r) for r in ratios):
        raise BadInput(f"ratios {raw!r}: expected three numbers (train val test)")
    return ratios


def split_plan(body: Mapping[str, Any], roots: Sequence[Path], task=None):
    from nectargan.dataset.tools import plan_split

    src = folder_in_roots(body.get("src"), roots, "source folder")
    out = folder_in_roots(body.get("out"), roots, "output folder")
    ratios = _ratios(body.get("ratios", [0.8, 0.1, 0.1]))
    seed = int_arg(body.get("seed", 0), "seed", 0, 2**31 - 1)
    return plan_split(src, out, ratios, seed, task=task)


def describe_plan(plan) -> dict[str, Any]:
    return {
        "lines": plan.describe(),
        "counts": plan.counts,
        "warnings": list(getattr(plan, "warnings", [])),
    }


# -- download ------------------------------------------------------------------------------


def download_args(body: Mapping[str, Any], roots: Sequence[Path]) -> dict[str, Any]:
    from nectargan.dataset.download import check_name

    name = check_name(str(body.get("name", "")))
    parent = folder_in_roots(body.get("parent"), roots, "download folder")
    url = body.get("url") or None
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise BadInput(f"url {url!r}: expected an http:// or https:// base URL")
    return {"name": name, "root": parent, "url": url, "force": bool(body.get("force"))}


def run_download(args: Mapping[str, Any], task) -> dict[str, Any]:
    from nectargan.dataset.download import download_dataset

    result = download_dataset(stream=io.StringIO(), task=task, **args)
    return {"folder": str(result.folder), "counts": result.counts, "downloaded": result.downloaded}
