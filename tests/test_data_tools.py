"""`data pair` and `data split`: joining A/B folders and splitting by ratio."""

from __future__ import annotations

import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from _support import spawn_logged, wait_for
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from nectargan.cli.main import main
from nectargan.dataset import pair_folders, split_dataset
from nectargan.dataset.tools import split_counts
from nectargan.errors import DataUserError


def save(path: Path, value: int, size: tuple[int, int] = (8, 6), mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value,) * 3).save(path)
    return path


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def run_cli(*argv: str) -> int:
    """The real command line, with its one error handler (user errors: one line, exit 2)."""
    return main(list(argv))


def test_pair_matches_by_name_and_joins_side_by_side(tmp_path: Path) -> None:
    save(tmp_path / "A" / "x.png", 10)
    save(tmp_path / "A" / "y.jpg", 20)
    save(tmp_path / "B" / "x.png", 200)
    save(tmp_path / "B" / "y.png", 220, mode="L")
    (tmp_path / "B" / "readme.txt").write_text("ignored")
    assert pair_folders(tmp_path / "A", tmp_path / "B", tmp_path / "out") == {".": 2}
    assert names(tmp_path / "out") == ["x.png", "y.png"]
    arr = np.asarray(Image.open(tmp_path / "out" / "x.png"))
    assert arr.shape == (6, 16, 3)
    assert (arr[:, :8] == 10).all() and (arr[:, 8:] == 200).all()


def test_pair_lists_unmatched_names(tmp_path: Path) -> None:
    save(tmp_path / "A" / "a1.png", 0)
    save(tmp_path / "A" / "both.png", 0)
    save(tmp_path / "B" / "both.png", 0)
    save(tmp_path / "B" / "b1.png", 0)
    save(tmp_path / "B" / "b2.png", 0)
    with pytest.raises(ValueError, match=r"(?s)only in A \(1\): a1.*only in B \(2\): b1, b2"):
        pair_folders(tmp_path / "A", tmp_path / "B", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pair_size_mismatch_needs_resize(tmp_path: Path) -> None:
    save(tmp_path / "A" / "p.png", 0, size=(8, 8))
    save(tmp_path / "B" / "p.png", 255, size=(4, 4))
    with pytest.raises(ValueError, match=r"is 8x8 but .*p\.png' is 4x4.*resize"):
        pair_folders(tmp_path / "A", tmp_path / "B", tmp_path / "out")
    pair_folders(tmp_path / "A", tmp_path / "B", tmp_path / "out2", resize=True)
    assert Image.open(tmp_path / "out2" / "p.png").size == (16, 8)


def test_pair_mirrors_split_subfolders(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for side in "AB":
            save(tmp_path / side / split / f"{split}1.png", 50)
    counts = pair_folders(tmp_path / "A", tmp_path / "B", tmp_path / "out")
    assert counts == {"train": 1, "test": 1}
    assert names(tmp_path / "out" / "train") == ["train1.png"]
    (tmp_path / "B" / "val").mkdir()
    with pytest.raises(ValueError, match=r"split folders \['train', 'test'\].*must match"):
        pair_folders(tmp_path / "A", tmp_path / "B", tmp_path / "out3")


def test_pair_errors_for_missing_folder_and_duplicate_names(tmp_path: Path) -> None:
    save(tmp_path / "A" / "d.png", 0)
    save(tmp_path / "A" / "d.jpg", 0)
    save(tmp_path / "B" / "d.png", 0)
    with pytest.raises(FileNotFoundError, match="B folder '.*nope' is not a directory"):
        pair_folders(tmp_path / "A", tmp_path / "nope", tmp_path / "out")
    with pytest.raises(ValueError, match="two images named 'd'"):
        pair_folders(tmp_path / "A", tmp_path / "B", tmp_path / "out")


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    for i in range(20):
        save(tmp_path / "src" / f"{i:02d}.png", i)
    (tmp_path / "src" / "notes.md").write_text("skip me")
    return tmp_path / "src"


def test_split_by_ratio_is_reproducible(flat: Path, tmp_path: Path) -> None:
    counts = split_dataset(flat, tmp_path / "o1", ratios=(0.6, 0.2, 0.2), seed=5)
    assert counts == {"train": 12, "val": 4, "test": 4}
    split_dataset(flat, tmp_path / "o2", ratios=(0.6, 0.2, 0.2), seed=5)
    split_dataset(flat, tmp_path / "o3", ratios=(0.6, 0.2, 0.2), seed=6)
    assert names(tmp_path / "o1" / "val") == names(tmp_path / "o2" / "val")
    assert names(tmp_path / "o1" / "val") != names(tmp_path / "o3" / "val")
    every = sum((names(tmp_path / "o1" / s) for s in ("train", "val", "test")), [])
    assert sorted(every) == [f"{i:02d}.png" for i in range(20)]


def test_split_errors(flat: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must sum to 1"):
        split_dataset(flat, tmp_path / "o", ratios=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="must differ from the source"):
        split_dataset(flat, flat)
    split_dataset(flat, tmp_path / "o")
    with pytest.raises(FileExistsError, match="already holds images"):
        split_dataset(flat, tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files"):
        split_dataset(tmp_path / "empty", tmp_path / "o4")


@given(st.integers(0, 500), st.integers(0, 10), st.integers(0, 10), st.integers(0, 10))
def test_split_counts_add_up_and_follow_ratios(n: int, a: int, b: int, c: int) -> None:
    total = a + b + c
    if total == 0:
        return
    ratios = (a / total, b / total, c / total)
    counts = split_counts(n, ratios)
    assert sum(counts) == n
    assert all(abs(k - n * r) < 1 for k, r in zip(counts, ratios, strict=True))


def test_cli_pair_then_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(10):
        save(tmp_path / "A" / f"{i}.png", 0)
        save(tmp_path / "B" / f"{i}.png", 255)
    assert (
        run_cli("data", "pair", str(tmp_path / "A"), str(tmp_path / "B"), str(tmp_path / "p")) == 0
    )
    assert "paired 10 images" in capsys.readouterr().out
    rc = run_cli(
        "data",
        "split",
        str(tmp_path / "p"),
        str(tmp_path / "s"),
        "--ratios",
        "0.8",
        "0.1",
        "0.1",
        "--seed",
        "3",
    )
    assert rc == 0
    assert [len(names(tmp_path / "s" / k)) for k in ("train", "val", "test")] == [8, 1, 1]


def test_cli_reports_errors_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save(tmp_path / "A" / "only_a.png", 0)
    (tmp_path / "B").mkdir()
    assert (
        run_cli("data", "pair", str(tmp_path / "A"), str(tmp_path / "B"), str(tmp_path / "o")) == 2
    )
    err = capsys.readouterr().err
    assert "nectargan data pair: error:" in err and "only_a" in err


def _pair_sources(tmp_path: Path, n: int) -> tuple[Path, Path]:
    for i in range(n):
        save(tmp_path / "A" / f"{i}.png", i)
        save(tmp_path / "B" / f"{i}.png", 200 - i)
    return tmp_path / "A", tmp_path / "B"


def all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_pair_with_a_bad_image_writes_nothing_and_the_rerun_works(tmp_path: Path) -> None:
    # Before: the pairs before the bad one stayed, and the rerun was refused
    # ("already holds images; use an empty one").
    a, b = _pair_sources(tmp_path, 3)
    (b / "2.png").write_text("not an image")
    with pytest.raises(DataUserError, match="cannot read image file"):
        pair_folders(a, b, tmp_path / "out")
    assert all_files(tmp_path / "out") == []
    save(b / "2.png", 1)
    assert pair_folders(a, b, tmp_path / "out") == {".": 3}
    assert names(tmp_path / "out") == ["0.png", "1.png", "2.png"]


def test_split_staging_leaves_the_layout_and_no_hidden_folder(flat: Path, tmp_path: Path) -> None:
    split_dataset(flat, tmp_path / "out", ratios=(1.0, 0.0, 0.0))
    assert names(tmp_path / "out") == ["test", "train", "val"]
    assert len(list((tmp_path / "out" / "train").iterdir())) == 20


@pytest.mark.parametrize("command", ["pair", "split"])
def test_output_that_is_a_file_or_under_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # Before: "pair: File exists: ..." / "split: Not a directory: '.../train'".
    a, b = _pair_sources(tmp_path, 1)
    plain = tmp_path / "plain"
    plain.write_text("x")
    sources = [str(a), str(b)] if command == "pair" else [str(a)]
    assert run_cli("data", command, *sources, str(plain)) == 2
    assert f"output folder '{plain}' is a file; expected a folder" in capsys.readouterr().err
    assert run_cli("data", command, *sources, str(plain / "sub")) == 2
    assert f"is inside '{plain}', which is a file" in capsys.readouterr().err


def test_ctrl_c_during_pair_leaves_no_partial_output(tmp_path: Path) -> None:
    # Noise does not compress, so each pair takes long enough to be interrupted mid-run.
    noise = np.random.default_rng(0).integers(0, 256, (384, 384, 3), dtype=np.uint8)
    for side in ("A", "B"):
        (tmp_path / side).mkdir()
        Image.fromarray(noise).save(tmp_path / side / "0.png", compress_level=0)
        for i in range(1, 40):
            shutil.copyfile(tmp_path / side / "0.png", tmp_path / side / f"{i}.png")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "nectargan", "data", "pair"]
    proc = spawn_logged(
        [*cmd, str(tmp_path / "A"), str(tmp_path / "B"), str(out)], tmp_path / "log"
    )
    try:
        wait_for(lambda: out.is_dir() and all_files(out), timeout=60, what="a first staged pair")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        proc.kill()
        proc.wait()
    assert all_files(out) == [], "half a dataset was left behind"
    assert "interrupted" in (tmp_path / "log.err").read_text()


def test_failed_pair_removes_the_output_folder_it_created(tmp_path: Path) -> None:
    # Before: a bad image halfway left an empty 'out/new' folder behind.
    a, b = _pair_sources(tmp_path, 3)
    (b / "2.png").write_text("not an image")
    with pytest.raises(DataUserError, match="cannot read image file"):
        pair_folders(a, b, tmp_path / "out" / "new")
    assert not (tmp_path / "out").exists()


def test_failed_pair_keeps_an_output_folder_that_existed(tmp_path: Path) -> None:
    a, b = _pair_sources(tmp_path, 3)
    (b / "2.png").write_text("not an image")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DataUserError):
        pair_folders(a, b, tmp_path / "out")
    assert names(tmp_path / "out") == ["keep.txt"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUserError):
        pair_folders(a, b, tmp_path / "empty")
    assert (tmp_path / "empty").is_dir()


def test_split_refuses_files_named_as_images_that_do_not_decode(flat: Path, tmp_path: Path) -> None:
    # Before: "split 21 images", the text file copied into a split as an image.
    (flat / "fake.jpg").write_text("a text file")
    with pytest.raises(DataUserError, match=r"1 file\(s\) in .* do not decode: fake\.jpg"):
        split_dataset(flat, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_split_warns_about_images_that_are_not_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before: square photos were split without a word; training cuts each in two halves.
    for i in range(4):
        save(tmp_path / "src" / f"pair{i}.png", i, size=(16, 8))
    save(tmp_path / "src" / "photo.png", 9, size=(8, 8))
    (tmp_path / "src" / "notes.txt").write_text("about the set")
    assert run_cli("data", "split", str(tmp_path / "src"), str(tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert "warning: 1 of 5 images in" in err and "photo.png is 8x8" in err
    assert "nectargan data pair" in err
    assert "1 file(s) that are not images stay behind: notes.txt" in err
    assert "unreadable" not in err and "broken" not in err


def test_dry_runs_say_what_would_be_written_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _pair_sources(tmp_path, 7)
    out = tmp_path / "new" / "pairs"
    assert run_cli("data", "pair", str(a), str(b), str(out), "--dry-run") == 0
    said = capsys.readouterr().out
    assert f"would write 7 image(s) to {out}/: 0.png, 1.png, 2.png, 3.png, 4.png ... and 2" in said
    assert not (tmp_path / "new").exists()
    pair_folders(a, b, out)
    rc = run_cli("data", "split", str(out), str(tmp_path / "s"), "--dry-run", "--seed", "1")
    assert rc == 0
    said = capsys.readouterr().out
    assert (
        "dry run: nothing written" in said
        and f"would copy 5 image(s) to {tmp_path / 's' / 'train'}/" in said
    )
    assert not (tmp_path / "s").exists()


def test_plan_then_work_reports_progress_and_can_be_cancelled(tmp_path: Path) -> None:
    from nectargan.dataset.task import Cancelled, Task
    from nectargan.dataset.tools import plan_pair

    a, b = _pair_sources(tmp_path, 5)
    seen: list[tuple[str, int, int | None]] = []
    task = Task(on_update=lambda t: seen.append((t.phase, t.done, t.total)))
    plan = plan_pair(a, b, tmp_path / "out", task=task)
    assert plan.counts == {".": 5} and not (tmp_path / "out").exists()
    assert pair_folders(a, b, tmp_path / "out", task=task, plan=plan) == {".": 5}
    assert ("pairing", 5, 5) in seen and ("checking sizes", 5, 5) in seen

    def cancel_at_three(t: Task) -> None:
        if t.phase == "pairing" and t.done == 3:
            t.cancel()

    with pytest.raises(Cancelled, match="pairing cancelled at 3 of 5"):
        pair_folders(a, b, tmp_path / "out2", task=Task(on_update=cancel_at_three))
    assert not (tmp_path / "out2").exists()
