"""`nectargan data preview`: the grid shows what the trainer sees; val without augmentation."""

from __future__ import annotations

import numpy as np
from PIL import Image

from nectargan.cli.main import main

SIZE = 64  # the demo config's crop; the 32 px test images are resized up to it
GAP = 4


def preview(
    tmp_path, dataroot, *extra: str, name: str = "grid.png"
) -> tuple[int, Image.Image | None]:
    """Run the command (one column unless ``--columns`` is in ``extra``) and open the grid."""
    out = tmp_path / name
    args = ["data", "preview", "--config", "demo", "--dataroot", str(dataroot)]
    rc = main([*args, "--output", str(out), "--columns", "1", *extra])
    return rc, (Image.open(out).convert("RGB") if out.exists() else None)


def cell(grid: Image.Image, row: int, col: int) -> np.ndarray:
    left, top = GAP + col * (SIZE + GAP), GAP + row * (SIZE + GAP)
    return np.asarray(grid.crop((left, top, left + SIZE, top + SIZE)), np.int16)


def is_gray(arr: np.ndarray) -> bool:
    return bool(np.all(arr[..., 0] == arr[..., 1]) and np.all(arr[..., 1] == arr[..., 2]))


def test_grid_has_one_row_per_pair(tmp_path, dataroot, capsys):
    rc, grid = preview(tmp_path, dataroot, "--n", "3")
    assert rc == 0 and grid is not None
    assert grid.size == (2 * SIZE + 3 * GAP, 3 * (SIZE + GAP) + GAP)
    assert "3 train pairs" in capsys.readouterr().out


def test_train_split_shows_the_augmentation_and_val_does_not(tmp_path, dataroot):
    gray = ("--set", "dataloader.augment.grayscale.p=1", "--n", "2")
    _, train = preview(tmp_path, dataroot, *gray)
    assert is_gray(cell(train, 0, 0)) and not is_gray(cell(train, 0, 1))  # input only
    _, val = preview(tmp_path, dataroot, *gray, "--split", "val")
    assert not is_gray(cell(val, 0, 0))
    _, val_again = preview(tmp_path, dataroot, *gray, "--split", "val")
    assert np.array_equal(np.asarray(val), np.asarray(val_again))


def test_seed_makes_it_reproducible(tmp_path, dataroot):
    _, a = preview(tmp_path, dataroot, "--seed", "3", "--n", "2")
    _, b = preview(tmp_path, dataroot, "--seed", "3", "--n", "2")
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_bad_augment_key_is_refused_before_any_image(tmp_path, dataroot, capsys):
    rc, grid = preview(tmp_path, dataroot, "--set", "dataloader.augment.elastic.p=1.5")
    assert rc == 2 and grid is None
    assert "dataloader.augment.elastic.p" in capsys.readouterr().err


def test_output_that_is_a_folder_or_under_a_file(tmp_path, dataroot, capsys):
    # Before: "preview: Is a directory: '.../.grid.png.x1y2z3.tmp'", our temporary name.
    args = ["data", "preview", "--config", "demo", "--dataroot", str(dataroot)]
    assert main([*args, "--output", str(tmp_path)]) == 2
    assert (
        f"--output '{tmp_path}' is a folder; expected an image file name" in capsys.readouterr().err
    )
    (tmp_path / "plain").write_text("x")
    assert main([*args, "--output", str(tmp_path / "plain" / "g.png")]) == 2
    assert f"is inside '{tmp_path / 'plain'}', which is a file" in capsys.readouterr().err


def test_pairs_in_several_columns_fill_the_rows_left_to_right(tmp_path, dataroot):
    rc, grid = preview(tmp_path, dataroot, "--n", "10", "--columns", "4", "--split", "val")
    # val has 4 pairs, so 4 are shown: one row of 4 A|B cells, 3 * GAP between cells.
    assert rc == 0
    assert grid.size == (GAP + 4 * (2 * SIZE + GAP) + 3 * 3 * GAP + GAP, SIZE + 2 * GAP)
    _, one_column = preview(tmp_path, dataroot, "--n", "4", "--split", "val", name="c1.png")
    for k in range(4):  # the same pairs, in the same order
        left = GAP + k * (2 * SIZE + 4 * GAP)
        cell_k = np.asarray(grid.crop((left, GAP, left + SIZE, GAP + SIZE)), np.int16)
        assert np.array_equal(cell_k, cell(one_column, k, 0))


def test_default_columns_make_a_wide_grid(tmp_path, dataroot):
    args = ["data", "preview", "--config", "demo", "--dataroot", str(dataroot), "--n", "16"]
    assert main([*args, "--output", str(tmp_path / "g.png")]) == 0
    w, h = Image.open(tmp_path / "g.png").size
    assert w > h  # 4 columns of 4 rows, not one tall column of 16


def test_output_suffix_sets_the_format(tmp_path, dataroot, capsys):
    # Before: PNG bytes were written under any name, .jpg included.
    for name, magic in (
        ("g.jpg", b"\xff\xd8\xff"),
        ("g.JPEG", b"\xff\xd8\xff"),
        ("g.webp", b"RIFF"),
    ):
        rc, grid = preview(tmp_path, dataroot, "--n", "2", name=name)
        assert rc == 0 and grid is not None
        assert (tmp_path / name).read_bytes()[: len(magic)] == magic, name
    rc, grid = preview(tmp_path, dataroot, name="g.gif")
    assert rc == 2 and grid is None
    err = capsys.readouterr().err
    assert "--output '" in err and "has suffix '.gif'; expected one of .png, .jpg" in err


def test_more_pairs_than_the_split_holds_is_said(tmp_path, dataroot, capsys):
    # Before: --n 10 on the 4 val pairs drew 10 rows, each pair 2-3 times, silently.
    rc, grid = preview(tmp_path, dataroot, "--n", "10", "--split", "val")
    assert rc == 0 and grid.size[1] == 4 * (SIZE + GAP) + GAP
    captured = capsys.readouterr()
    assert "note: val/ has 4 pair(s); showing 4, not 10" in captured.err
    assert captured.out.startswith("4 val pairs")
    rc, grid = preview(tmp_path, dataroot, "--n", "40")  # train: 32 pairs, augmented anew
    assert rc == 0 and grid.size[1] == 40 * (SIZE + GAP) + GAP
    assert "the 40 shown repeat them, each augmented anew" in capsys.readouterr().err


def test_bad_columns_and_n_are_refused(tmp_path, dataroot, capsys):
    assert preview(tmp_path, dataroot, "--columns", "17")[0] == 2
    assert "--columns 17 must be between 1 and 16" in capsys.readouterr().err
    assert preview(tmp_path, dataroot, "--n", "0")[0] == 2
    assert "--n 0 must be between 1 and 256" in capsys.readouterr().err
