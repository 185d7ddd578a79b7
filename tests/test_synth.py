"""Synthetic paired dataset: layout, determinism, reuse, speed and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nectargan.cli.main import main
from nectargan.dataset import PairedDataset, generate_synthetic_dataset
from nectargan.dataset.synth import LABEL_COLORS, render_pair


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def run_cli(*argv: str) -> int:
    """The real command line, with its one error handler (user errors: one line, exit 2)."""
    return main(list(argv))


def test_layout_and_counts(tmp_path: Path) -> None:
    out = generate_synthetic_dataset(tmp_path / "d", n=20, size=32, seed=3)
    counts = {s: len(list((out / s).glob("*.png"))) for s in ("train", "val", "test")}
    assert counts == {"train": 16, "val": 2, "test": 2}
    img = Image.open(out / "train" / "000000.png")
    assert img.size == (64, 32) and img.mode == "RGB"
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["seed"] == 3 and manifest["counts"] == counts


def test_custom_ratios(tmp_path: Path) -> None:
    out = generate_synthetic_dataset(tmp_path, n=10, size=16, ratios=(0.5, 0.5, 0.0))
    assert [len(list((out / s).iterdir())) for s in ("train", "val", "test")] == [5, 5, 0]


def test_deterministic_from_seed_and_independent_of_n(tmp_path: Path) -> None:
    a = generate_synthetic_dataset(tmp_path / "a", n=10, size=32, seed=7)
    b = generate_synthetic_dataset(tmp_path / "b", n=10, size=32, seed=7)
    c = generate_synthetic_dataset(tmp_path / "c", n=30, size=32, seed=7)
    d = generate_synthetic_dataset(tmp_path / "d", n=10, size=32, seed=8)
    name = "train/000003.png"
    assert np.array_equal(pixels(a / name), pixels(b / name))
    assert np.array_equal(pixels(a / name), pixels(c / name))
    assert not np.array_equal(pixels(a / name), pixels(d / name))


def test_label_map_is_flat_palette_and_rendering_is_shaded() -> None:
    a, b = render_pair(64, seed=0, index=0)
    colours = {tuple(c) for c in a.reshape(-1, 3)}
    assert colours <= {tuple(c) for c in LABEL_COLORS} and len(colours) >= 2
    assert len({tuple(c) for c in b.reshape(-1, 3)}) > 50  # shading and texture, not flat


def test_reuses_a_finished_dataset_with_same_settings(tmp_path: Path) -> None:
    out = generate_synthetic_dataset(tmp_path, n=5, size=16)
    first = out / "train" / "000000.png"
    stamp = first.stat().st_mtime_ns
    generate_synthetic_dataset(tmp_path, n=5, size=16)
    assert first.stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="already holds 5 images.*overwrite"):
        generate_synthetic_dataset(tmp_path, n=6, size=16)
    generate_synthetic_dataset(tmp_path, n=6, size=16, overwrite=True)
    assert json.loads((out / "dataset.json").read_text())["n"] == 6


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n": 0}, "n 0 must be a positive integer"),
        ({"size": 8}, "size 8 must be an integer >= 16 and <= 2048"),
        # Before: a MemoryError traceback (150 GB of arrays).
        ({"size": 100000}, "size 100000 must be an integer >= 16 and <= 2048"),
        ({"ratios": (0.8, 0.1)}, "must be three non-negative numbers"),
        ({"ratios": (0.8, 0.3, 0.1)}, "must sum to 1, they sum to 1.2"),
    ],
)
def test_bad_arguments(tmp_path: Path, kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        generate_synthetic_dataset(tmp_path, **({"n": 4, "size": 16} | kw))


def test_generates_hundreds_of_pairs(tmp_path: Path) -> None:
    # Its speed (ms per pair) is measured in bench/former_test_bounds.py, not asserted here.
    out = generate_synthetic_dataset(tmp_path, n=200, size=64)
    assert sum(len(list((out / s).glob("*.png"))) for s in ("train", "val", "test")) == 200


def test_loads_as_paired_dataset(tmp_path: Path) -> None:
    out = generate_synthetic_dataset(tmp_path, n=10, size=32)
    ds = PairedDataset(out, "train", load_size=36, crop_size=32)
    x, y = ds[0]
    assert x.shape == y.shape == (3, 32, 32)
    assert not torch.equal(x, y)


def test_cli_synth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert run_cli("data", "synth", str(out), "--n", "10", "--size", "16", "--seed", "2") == 0
    assert "10 pairs of 16px" in capsys.readouterr().out
    assert len(list((out / "train").glob("*.png"))) == 8
    assert run_cli("data", "synth", str(out), "--n", "10", "--ratios", "1", "1", "1") == 2
    assert "must sum to 1" in capsys.readouterr().err


def test_cli_data_without_subcommand_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("data") == 2
    assert "synth" in capsys.readouterr().err


def test_cli_synth_into_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Before: "synth: Not a directory: '.../dataset.json'", a name the user never gave.
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert main(["data", "synth", str(plain), "--n", "2", "--size", "16"]) == 2
    assert f"output folder '{plain}' is a file; expected a folder" in capsys.readouterr().err
    assert main(["data", "synth", str(plain / "sub"), "--n", "2", "--size", "16"]) == 2
    assert f"is inside '{plain}', which is a file" in capsys.readouterr().err
