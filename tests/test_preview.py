"""`nectargan data preview`: the grid shows what the trainer sees; val without augmentation."""

from __future__ import annotations

import numpy as np
from PIL import Image

from nectargan.cli.main import main

SIZE = 64  # the demo config's crop; the 32 px test images are resized up to it
GAP = 4


def preview(tmp_path, dataroot, *extra: str) -> tuple[int, Image.Image | None]:
    out = tmp_path / "grid.png"
    args = ["data", "preview", "--config", "demo", "--dataroot", str(dataroot)]
    rc = main([*args, "--output", str(out), *extra])
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
    assert f"--output '{tmp_path}' is a folder; expected a .png file" in capsys.readouterr().err
    (tmp_path / "plain").write_text("x")
    assert main([*args, "--output", str(tmp_path / "plain" / "g.png")]) == 2
    assert f"is inside '{tmp_path / 'plain'}', which is a file" in capsys.readouterr().err
