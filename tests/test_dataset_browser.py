"""The dataset page's backend: layout check, per-pair measures (cached), pages, thumbnails, exclude."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from nectargan.cli.main import main
from nectargan.dataset.layout import survey_layout
from nectargan.dataset.measures import cache_path, measure_split
from nectargan.dataset.pairs import exclude_pair, list_pairs, restore_pair, thumbnail
from nectargan.dataset.task import Cancelled, Task
from nectargan.errors import DataExistsError, DataUserError


def pair_image(path: Path, left: int, right: int, size: tuple[int, int] = (32, 16)) -> Path:
    """A stored A|B pair: the left half one grey level, the right half another."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("L", size, left)
    img.paste(right, (size[0] // 2, 0, size[0], size[1]))
    img.convert("RGB").save(path)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """train: a white page, a black one, a mid-grey one, a split one; val: one pair."""
    data = tmp_path / "set"
    pair_image(data / "train" / "white.png", 255, 255)
    pair_image(data / "train" / "black.png", 0, 0)
    pair_image(data / "train" / "grey.png", 128, 128)
    pair_image(data / "train" / "half.png", 0, 255)
    pair_image(data / "val" / "v.png", 100, 100)
    return data


def test_layout_check_lists_counts_sizes_problems_and_non_images_apart(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pair_image(root / "train" / "big.png", 9, 9, size=(64, 32))
    pair_image(root / "train" / "square.png", 9, 9, size=(16, 16))
    (root / "train" / "broken.png").write_text("no image")
    (root / "train" / "notes.txt").write_text("about the set")
    survey = survey_layout(root)
    assert survey.counts == {"train": 7, "val": 1}
    assert survey.pair_size("train") == (16, 16)
    assert any("broken.png" in p and "cannot read image" in p for p in survey.problems)
    assert any("square.png' is 16x16" in p for p in survey.problems)
    assert not any("notes.txt" in p for p in survey.problems)
    assert survey.non_images == {"train": ["notes.txt"]}
    assert any("big.png (64x32)" in n and "usual 32x16" in n for n in survey.notes)
    as_json = json.loads(json.dumps(survey.to_dict()))
    assert as_json["sizes"]["train"]["32x16"] == 4 and not as_json["ok"]
    assert main(["data", "check", str(root)]) == 2
    out = capsys.readouterr().out
    assert "train: 7 pair(s), 32x16" in out and "not images, ignored (train/): notes.txt" in out


def test_layout_check_without_train_says_the_layout_it_expects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pair_image(tmp_path / "photos" / "a.png", 1, 2)
    assert main(["data", "check", str(tmp_path / "photos")]) == 2
    out = capsys.readouterr().out
    assert "has no train/ folder; expected" in out and "side-by-side A|B images" in out


def test_measures_find_blank_and_odd_pairs(root: Path) -> None:
    m = {Path(n).stem: e["m"] for n, e in measure_split(root, "train", workers=2).items()}
    assert m["white"]["brightness"] == 255 and m["white"]["white"] == 1.0
    assert m["black"]["black"] == 1.0 and m["black"]["contrast"] == 0.0
    assert m["grey"]["white"] == 0.0 and m["grey"]["black"] == 0.0
    assert m["half"]["contrast"] == pytest.approx(0.5, abs=1e-3)  # half 0, half 255
    assert all(v["mismatch"] == 0.0 for v in m.values())
    pair_image(root / "train" / "square.png", 5, 5, size=(16, 16))
    m2 = measure_split(root, "train")["square.png"]["m"]
    assert (
        m2["mismatch"] == 0.5 and m2["file_size"] == (root / "train" / "square.png").stat().st_size
    )


def test_measures_are_cached_by_size_and_mtime(root: Path) -> None:
    starts: list[int] = []

    def first_update(task: Task) -> None:
        if not starts:
            starts.append(task.done)  # how many came from the cache

    measure_split(root, "train", Task(first_update))
    assert starts == [0] and cache_path(root, "train").is_file()
    starts.clear()
    measure_split(root, "train", Task(first_update))
    assert starts == [4]
    pair_image(root / "train" / "grey.png", 10, 10)  # changed: measured again
    os.utime(root / "train" / "grey.png", ns=(1, 1))
    starts.clear()
    result = measure_split(root, "train", Task(first_update))
    assert starts == [3] and result["grey.png"]["m"]["brightness"] == 10


def test_cancelled_measuring_keeps_what_it_measured(tmp_path: Path) -> None:
    for i in range(200):
        pair_image(tmp_path / "d" / "train" / f"{i:03d}.png", i, i)

    def cancel_early(task: Task) -> None:
        if task.done >= 64:
            task.cancel()

    with pytest.raises(Cancelled, match="measuring cancelled"):
        measure_split(tmp_path / "d", "train", Task(cancel_early), workers=1)
    cached = json.loads(cache_path(tmp_path / "d", "train").read_text())["files"]
    assert 64 <= len(cached) < 200


def test_broken_file_is_listed_with_its_error_not_a_crash(root: Path) -> None:
    (root / "train" / "broken.png").write_bytes(b"\x89PNG not really")
    measure_split(root, "train")
    page = list_pairs(root, "train", sort="brightness", descending=True)
    assert [i["name"] for i in page.items] == [
        "white.png",
        "grey.png",
        "half.png",
        "black.png",
        "broken.png",
    ]
    assert "cannot read image" in page.items[-1]["error"]


def test_sorting_both_ways_keeps_unmeasured_pairs_last(root: Path) -> None:
    measure_split(root, "train")
    pair_image(root / "train" / "zz_new.png", 50, 50)
    up = list_pairs(root, "train", sort="white")
    down = list_pairs(root, "train", sort="white", descending=True)
    assert up.items[-1]["name"] == down.items[-1]["name"] == "zz_new.png"
    assert down.items[0]["name"] == "white.png" and up.measured == 4 and up.total == 5
    by_name = list_pairs(root, "train", sort="name", descending=True)
    assert by_name.items[0]["name"] == "zz_new.png"


def ten_thousand_pairs(folder: Path) -> None:
    """10,000 tiny PNGs named 00000.png ... 09999.png (one encoded image, written often)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 4)).save(buf, format="PNG")
    folder.mkdir(parents=True)
    for i in range(10_000):
        (folder / f"{i:05d}.png").write_bytes(buf.getvalue())


def test_ten_thousand_files_list_in_pages(tmp_path: Path) -> None:
    ten_thousand_pairs(tmp_path / "big" / "train")
    page = list_pairs(tmp_path / "big", "train", offset=9_950, limit=100)
    assert page.total == 10_000 and len(page.items) == 50
    assert page.items[0]["name"] == "09950.png"
    with pytest.raises(DataUserError, match="limit 100000"):
        list_pairs(tmp_path / "big", "train", limit=100_000)


def test_exclude_moves_the_pair_aside_and_restore_brings_it_back(root: Path) -> None:
    moved = exclude_pair(root, "train", "black.png")
    assert moved == root / "excluded" / "train" / "black.png" and moved.is_file()
    assert not (root / "train" / "black.png").exists()
    assert [i["name"] for i in list_pairs(root, "train", excluded=True).items] == ["black.png"]
    assert survey_layout(root).counts["train"] == 3  # excluded/ is not a split
    restore_pair(root, "train", "black.png")
    assert (root / "train" / "black.png").is_file()
    assert list((root / "excluded" / "train").iterdir()) == []


@pytest.mark.parametrize(
    "name", ["../val/v.png", "..", "sub/x.png", ".hidden.png", "/etc/passwd", "x.png\0"]
)
def test_exclude_refuses_names_that_are_not_plain_file_names(root: Path, name: str) -> None:
    with pytest.raises(DataUserError, match="not a plain file name"):
        exclude_pair(root, "train", name)
    assert (root / "val" / "v.png").is_file()


def test_exclude_never_overwrites(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exclude_pair(root, "train", "grey.png")
    pair_image(root / "train" / "grey.png", 7, 7)
    with pytest.raises(DataExistsError, match="already exists"):
        exclude_pair(root, "train", "grey.png")
    with pytest.raises(DataExistsError, match="already exists"):
        restore_pair(root, "train", "grey.png")
    assert main(["data", "exclude", str(root), "nope.png"]) == 2
    assert "is not a file here" in capsys.readouterr().err
    with pytest.raises(DataUserError, match="split 'excluded' is not one of"):
        exclude_pair(root, "excluded", "grey.png")


def test_thumbnails_are_made_once_and_remade_when_the_image_changes(root: Path) -> None:
    first = thumbnail(root, "train", "half.png")
    assert Image.open(io.BytesIO(first)).size == (32, 16)  # small images keep their size
    thumbs = root / ".nectargan" / "thumbs" / "train"
    [cached] = list(thumbs.iterdir())
    assert cached.read_bytes() == first
    pair_image(root / "train" / "half.png", 255, 0)
    os.utime(root / "train" / "half.png", ns=(5, 5))
    second = thumbnail(root, "train", "half.png")
    assert second != first and len(list(thumbs.iterdir())) == 2
    big = pair_image(root / "train" / "big.png", 1, 2, size=(1024, 512))
    assert Image.open(io.BytesIO(thumbnail(root, "train", big.name))).size == (192, 96)


def test_cli_measures_lists_the_extremes_first(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "measures", str(root), "--sort", "black", "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("name\tbrightness") and out[1].startswith("black.png\t")
    assert out[2].startswith("half.png\t") and len(out) == 3
