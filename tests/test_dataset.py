"""PairedDataset and paired augmentations on tiny hand-made A|B images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _support import textured_image
from PIL import Image
from torch.utils.data import DataLoader

from nectargan.dataset import AugmentConfig, ImageReadError, PairedDataset, PairedTransform
from nectargan.dataset.tensors import to_uint8

SIDE = 32


def gradient_image(seed: int, mode: str = "RGB") -> Image.Image:
    """An asymmetric picture, so flips, crops and rotations all change it visibly."""
    return textured_image(seed, SIDE, mode, step=8, noise=20)


def solid(value: int, mode: str = "RGB") -> Image.Image:
    return Image.new(mode, (SIDE, SIDE), value if mode == "L" else (value,) * len(mode))


def write_pair(path: Path, a: Image.Image, b: Image.Image) -> Path:
    out = Image.new(a.mode, (2 * SIDE, SIDE))
    out.paste(a, (0, 0))
    out.paste(b.convert(a.mode), (SIDE, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save(path)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for split in ("train", "val", "test"):
        for i in range(3):
            write_pair(tmp_path / split / f"{i}.png", solid(0), solid(255))
    return tmp_path


def test_items_are_normalised_chw_float32(root: Path) -> None:
    ds = PairedDataset(root, "val", load_size=SIDE, crop_size=SIDE)
    x, y = ds[0]
    assert len(ds) == 3 and x.shape == y.shape == (3, SIDE, SIDE)
    assert x.dtype == y.dtype == torch.float32
    assert torch.all(x == -1) and torch.all(y == 1)


def test_direction_swaps_input_and_target(root: Path) -> None:
    x, y = PairedDataset(root, "val", direction="BtoA", load_size=SIDE, crop_size=SIDE)[0]
    assert torch.all(x == 1) and torch.all(y == -1)


def test_load_and_crop_sizes(root: Path) -> None:
    ds = PairedDataset(root, "train", load_size=40, crop_size=24)
    assert ds[0][0].shape == (3, 24, 24)
    with pytest.raises(ValueError, match="load_size 20 must be >= crop_size 24"):
        PairedDataset(root, "train", load_size=20, crop_size=24)


def test_only_image_files_are_read(root: Path) -> None:
    (root / "val" / "notes.txt").write_text("not an image")
    (root / "val" / ".DS_Store").write_bytes(b"\0\1")
    (root / "val" / "._0.png").write_bytes(b"resource fork")
    (root / "val" / "sub.png").mkdir()
    ds = PairedDataset(root, "val", load_size=SIDE, crop_size=SIDE)
    assert [p.name for p in ds.paths] == ["0.png", "1.png", "2.png"]


def as_mode(img: Image.Image, mode: str) -> Image.Image:
    """Re-encode an RGB image the way files of other modes would hold it."""
    if mode == "I;16":
        return Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257)
    return img.convert(mode)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA", "I;16"])
@pytest.mark.parametrize("channels", [1, 3])
def test_any_source_mode_becomes_configured_channels(
    tmp_path: Path, mode: str, channels: int
) -> None:
    pair = Image.new("RGB", (2 * SIDE, SIDE))
    pair.paste(gradient_image(0), (0, 0))
    pair.paste(gradient_image(1), (SIDE, 0))
    (tmp_path / "val").mkdir()
    encoded = as_mode(pair, mode)
    encoded.save(tmp_path / "val" / "a.png")
    assert Image.open(tmp_path / "val" / "a.png").mode == mode
    x, y = PairedDataset(tmp_path, "val", load_size=SIDE, crop_size=SIDE, channels=channels)[0]
    assert x.shape == y.shape == (channels, SIDE, SIDE)
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.1


def test_transparent_pixels_become_white(tmp_path: Path) -> None:
    clear = Image.new("RGBA", (SIDE, SIDE), (10, 20, 30, 0))
    write_pair(tmp_path / "val" / "a.png", clear, clear)
    x, _ = PairedDataset(tmp_path, "val", load_size=SIDE, crop_size=SIDE)[0]
    assert torch.all(x == 1)


def test_corrupt_file_raises_error_naming_it(root: Path) -> None:
    bad = root / "val" / "1.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = PairedDataset(root, "val", load_size=SIDE, crop_size=SIDE)
    ds[0]
    with pytest.raises(ImageReadError, match=r"cannot read image file '.*1\.png'"):
        ds[1]
    with pytest.raises(OSError, match="1.png"):
        next(iter(DataLoader(ds, batch_size=3)))


def test_truncated_file_raises_error_naming_it(root: Path) -> None:
    path = root / "val" / "2.jpg"
    write_pair(path, gradient_image(1), gradient_image(2))
    path.write_bytes(path.read_bytes()[:200])
    ds = PairedDataset(root, "val", load_size=SIDE, crop_size=SIDE)
    with pytest.raises(ImageReadError, match=r"2\.jpg"):
        ds[ds.paths.index(path)]


def test_missing_or_empty_split_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="split folder '.*train' not found"):
        PairedDataset(tmp_path)
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files in '.*train'"):
        PairedDataset(tmp_path)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"direction": "AtoC"}, "direction 'AtoC' must be one of AtoB, BtoA"),
        ({"channels": 2}, "channels 2 is not supported"),
        ({"augment": {"hflip_p": 0.5}}, r"dataloader\.augment\.hflip_p: unknown augmentation"),
        (
            {"augment": {"hflip": {"p": 2}}},
            r"dataloader\.augment\.hflip\.p: .*less than or equal to 1",
        ),
        (
            {"augment": {"blur": {"sigma": [2, 1]}}},
            r"dataloader\.augment\.blur\.sigma: .*min > max",
        ),
    ],
)
def test_bad_arguments(root: Path, kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PairedDataset(root, **kw)


def test_augmentation_only_for_training(root: Path) -> None:
    strong = AugmentConfig.all_on()
    write_pair(root / "val" / "0.png", gradient_image(0), gradient_image(1))
    val = PairedDataset(root, "val", load_size=40, crop_size=SIDE, augment=strong)
    assert not val.is_train
    assert all(torch.equal(a, b) for a, b in zip(val[0], val[0], strict=True))
    forced = PairedDataset(root, "val", load_size=40, crop_size=SIDE, augment=strong, is_train=True)
    torch.manual_seed(0)
    first = forced[0][0]
    assert not torch.equal(first, forced[0][0])


def run(transform: PairedTransform, x: Image.Image, y: Image.Image, seed: int):
    return transform(x, y, torch.Generator().manual_seed(seed))


def test_geometric_augmentations_move_input_and_target_together() -> None:
    img = gradient_image(3)
    cfg = AugmentConfig.model_validate(
        {"rotate": {"p": 1, "degrees": [-25, 25]}, "vflip": {"p": 0.5}}
    )
    t = PairedTransform(48, SIDE, cfg, train=True)
    outputs = set()
    for seed in range(12):
        x, y = run(t, img, img.copy(), seed)
        assert torch.equal(x, y)
        outputs.add(to_uint8(x).tobytes())
    assert len(outputs) == 12


def test_photometric_augmentations_touch_input_only() -> None:
    a, b = gradient_image(4), gradient_image(5)
    geo_keys = {"rotate": {"p": 1}, "vflip": {"p": 0.5}}
    geo = AugmentConfig.model_validate(geo_keys)
    photo = AugmentConfig.model_validate(
        {**geo_keys, "color_jitter": {"p": 1}, "blur": {"p": 1}, "noise": {"p": 1}}
    )
    for seed in range(4):
        x0, y0 = run(PairedTransform(40, SIDE, geo, train=True), a, b, seed)
        x1, y1 = run(PairedTransform(40, SIDE, photo, train=True), a, b, seed)
        assert torch.equal(y0, y1)
        assert not torch.equal(x0, x1)
        assert x1.min() >= -1 and x1.max() <= 1


def test_eval_transform_is_a_centre_crop() -> None:
    img = gradient_image(6)
    x, _ = PairedTransform(SIDE, 16, AugmentConfig(), train=False)(img, img)
    expected = np.asarray(img.crop((8, 8, 24, 24)), np.float32) / 127.5 - 1
    assert np.allclose(x.permute(1, 2, 0).numpy(), expected)


def test_augment_off_is_deterministic_in_training(root: Path) -> None:
    write_pair(root / "train" / "0.png", gradient_image(7), gradient_image(8))
    ds = PairedDataset(root, "train", load_size=40, crop_size=SIDE, augment=AugmentConfig.off())
    assert torch.equal(ds[0][0], ds[0][0])
    assert AugmentConfig.from_any(None) == AugmentConfig()
    assert AugmentConfig.from_any(AugmentConfig.off().to_dict()) == AugmentConfig.off()


def test_default_training_augmentation_is_seeded_by_torch(root: Path) -> None:
    write_pair(root / "train" / "0.png", gradient_image(7), gradient_image(8))
    ds = PairedDataset(root, "train", load_size=48, crop_size=SIDE)
    torch.manual_seed(1)
    first = ds[0]
    torch.manual_seed(1)
    assert all(torch.equal(a, b) for a, b in zip(first, ds[0], strict=True))


def test_batches_through_dataloader(root: Path) -> None:
    ds = PairedDataset(root, "train", load_size=36, crop_size=SIDE)
    x, y = next(iter(DataLoader(ds, batch_size=3, shuffle=True)))
    assert x.shape == y.shape == (3, 3, SIDE, SIDE)
