"""``nectargan infer``: inputs, sizing, channels, bad files, parity with ``nectargan test``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nectargan.cli.main import main
from nectargan.dataset.io import list_images
from nectargan.errors import DataUserError
from nectargan.inference.inputs import collect_inputs, read_input
from nectargan.inference.model_info import ModelInfo
from nectargan.inference.runner import InferOptions, infer_images
from nectargan.inference.sizing import fit_image, unfit_output


def _rgb(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture
def messy_folder(tmp_path):
    """Odd sizes, grayscale, RGBA, plus a text file and a truncated PNG."""
    folder = tmp_path / "in"
    folder.mkdir()
    _rgb(50, 70).save(folder / "odd.png")
    _rgb(40, 40, 1).convert("L").save(folder / "gray.png")
    rgba = _rgb(33, 47, 2).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "rgba.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes((folder / "odd.png").read_bytes()[:120])
    return folder


def _arr(path):
    return np.asarray(Image.open(path), dtype=np.int16)


def test_folder_with_odd_sizes_gray_rgba_and_bad_files(
    tiny_experiment, messy_folder, tmp_path, capsys
):
    out = tmp_path / "out"
    args = ["infer", "--experiment", str(tiny_experiment), str(messy_folder), "-o", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    # Before: "skipped 2 unreadable file(s)", notes.txt among the broken images.
    assert err.count("warning: skipped 1 broken image(s):") == 1
    assert err.count("warning: skipped 1 non-image file(s):") == 1
    broken, not_image = err.split("non-image file(s):")
    assert "broken.png" in broken and "notes.txt" not in broken
    assert "notes.txt" in not_image and "broken.png" not in not_image
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["gray.png", "odd.png", "rgba.png"]
    for name in ("odd", "gray", "rgba"):
        src, dst = Image.open(messy_folder / f"{name}.png"), Image.open(out / f"{name}.png")
        assert dst.size == src.size and dst.mode == "RGB"


def test_broken_file_named_on_the_command_line_exits_2(
    tiny_experiment, messy_folder, tmp_path, capsys
):
    bad = messy_folder / "broken.png"
    args = ["infer", "--experiment", str(tiny_experiment), str(bad), "-o", str(tmp_path / "o")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("what", ["empty", "missing"])
def test_empty_or_missing_input_exits_2(tiny_experiment, tmp_path, capsys, what):
    target = tmp_path / "nothing"
    if what == "empty":
        target.mkdir()
    args = ["infer", "--experiment", str(tiny_experiment), str(target), "-o", str(tmp_path / "o")]
    assert main(args) == 2
    assert str(target) in capsys.readouterr().err


def test_same_pixels_as_nectargan_test(tiny_experiment, dataroot, tmp_path):
    """--paired on the test split reproduces the middle panel of `nectargan test`'s triplets."""
    test_out = tmp_path / "test"
    assert main(["test", "--experiment", str(tiny_experiment), "--out", str(test_out)]) == 0
    out = tmp_path / "infer"
    args = ["infer", "--experiment", str(tiny_experiment), str(dataroot / "test"), "-o", str(out)]
    assert main([*args, "--paired", "--batch-size", "3"]) == 0
    files = list_images(dataroot / "test")
    assert files
    for path in files:
        triplet = _arr(test_out / f"{path.stem}.png")
        w = triplet.shape[1] // 3
        assert np.array_equal(_arr(out / f"{path.stem}.png"), triplet[:, w : 2 * w])


def test_checkpoint_and_onnx_agree_within_2_levels(
    tiny_experiment, tiny_onnx, messy_folder, tmp_path
):
    outs = {}
    for flag, value in (("--experiment", tiny_experiment), ("--model", tiny_onnx)):
        outs[flag] = tmp_path / flag.strip("-")
        assert main(["infer", flag, str(value), str(messy_folder), "-o", str(outs[flag])]) == 0
    for name in ("odd", "gray", "rgba"):
        a, b = _arr(outs["--experiment"] / f"{name}.png"), _arr(outs["--model"] / f"{name}.png")
        assert a.shape == b.shape and np.abs(a - b).max() <= 2


def test_side_by_side_and_overwrite(tiny_experiment, messy_folder, tmp_path, capsys):
    out = tmp_path / "o"
    img = messy_folder / "odd.png"
    args = [
        "infer",
        "--experiment",
        str(tiny_experiment),
        str(img),
        "-o",
        str(out),
        "--side-by-side",
    ]
    assert main(args) == 0
    joined = _arr(out / "odd.png")
    assert joined.shape == (50, 140, 3)
    assert np.array_equal(joined[:, :70], _arr(img))
    assert main(args) == 2  # never overwrites silently
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_batch_size_does_not_change_outputs(tiny_experiment, messy_folder, tmp_path):
    for bs in ("1", "3"):
        args = ["infer", "--experiment", str(tiny_experiment), str(messy_folder)]
        assert main([*args, "-o", str(tmp_path / bs), "--batch-size", bs]) == 0
    for name in ("odd", "gray", "rgba"):
        assert np.array_equal(
            _arr(tmp_path / "1" / f"{name}.png"), _arr(tmp_path / "3" / f"{name}.png")
        )


def test_resize_mode_keeps_the_input_size(tiny_experiment, messy_folder, tmp_path):
    args = ["infer", "--experiment", str(tiny_experiment), str(messy_folder / "odd.png")]
    assert main([*args, "-o", str(tmp_path / "o"), "--resize"]) == 0
    assert Image.open(tmp_path / "o" / "odd.png").size == (70, 50)


class Identity:
    """A stand-in model returning its input, to see sizing and channels exactly."""

    name = "identity"

    def __init__(self, channels: int, n_downs: int = 4, crop: int = 32) -> None:
        self.info = ModelInfo(channels=channels, n_downs=n_downs, crop_size=crop)
        self.shapes: list[tuple[int, ...]] = []

    def run(self, batch):
        self.shapes.append(batch.shape)
        return batch


@pytest.mark.parametrize(("h", "w"), [(50, 70), (5, 3), (16, 16), (1, 17)])
def test_pad_and_crop_back_is_lossless(h, w):
    img = _rgb(h, w)
    fitted = fit_image(img, "pad", 16)
    assert fitted.model_hw[0] % 16 == 0 and fitted.model_hw[1] % 16 == 0
    back = unfit_output(fitted.array, fitted)
    assert back.size == (w, h) and np.array_equal(np.asarray(back), np.asarray(img))


def test_one_channel_model_gets_one_channel_input(tmp_path):
    path = tmp_path / "c.png"
    _rgb(20, 30).save(path)
    model = Identity(channels=1)
    items = collect_inputs([str(path)])
    infer_images(model, items, tmp_path / "o", InferOptions())
    assert model.shapes == [(1, 1, 32, 32)]
    out = Image.open(tmp_path / "o" / "c.png")
    assert out.mode == "L" and out.size == (30, 20)


def test_paired_takes_the_input_half_per_direction(tmp_path):
    a, b = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    pair = Image.new("RGB", (16, 8))
    pair.paste(a, (0, 0))
    pair.paste(b, (8, 0))
    path = tmp_path / "p.png"
    pair.save(path)
    assert read_input(path, 3, paired=True, direction="AtoB").getpixel((0, 0)) == (255, 0, 0)
    assert read_input(path, 3, paired=True, direction="BtoA").getpixel((0, 0)) == (0, 0, 255)


def test_recursive_folders_and_globs(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    _rgb(8, 8).save(tmp_path / "d" / "a.png")
    _rgb(8, 8).save(tmp_path / "d" / "sub" / "b.jpg")
    flat = collect_inputs([str(tmp_path / "d")])
    assert [i.out_name.as_posix() for i in flat] == ["a.png"]
    deep = collect_inputs([str(tmp_path / "d")], recursive=True)
    assert [i.out_name.as_posix() for i in deep] == ["a.png", "sub/b.png"]
    globbed = collect_inputs([str(tmp_path / "d" / "*.png")])
    assert [i.path.name for i in globbed] == ["a.png"] and not globbed[0].named


def test_two_inputs_with_one_output_name_are_refused(tmp_path):
    _rgb(8, 8).save(tmp_path / "x.png")
    _rgb(8, 8).save(tmp_path / "x.jpg")
    with pytest.raises(DataUserError, match="both be written as 'x.png'"):
        collect_inputs([str(tmp_path)])


def test_eval_mode_generator_is_deterministic(tiny_experiment):
    """Dropout off and running batch-norm statistics: the same input, the same output."""
    from nectargan.inference.checkpoints import load_inference_generator

    generator, *_ = load_inference_generator(tiny_experiment)
    assert not generator.training
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        alone = generator(x)
        in_batch = generator(torch.cat([x, torch.rand(3, 3, 32, 32)]))[:1]
    assert torch.allclose(alone, in_batch, atol=1e-6)


def test_onnx_tester_runs_a_folder(tiny_onnx, messy_folder, tmp_path):
    from nectargan.onnx.tester import run_onnx_model

    result = run_onnx_model(tiny_onnx, messy_folder, tmp_path / "o", batch_size=2)
    assert result["n_images"] == 3 and len(result["skipped"]) == 2
    assert Image.open(tmp_path / "o" / "odd.png").size == (70, 50)


def test_onnx_tester_module_entry_point(tiny_onnx, messy_folder, tmp_path):
    from nectargan.onnx.tester import main as tester_main

    out = tmp_path / "o"
    assert tester_main([str(tiny_onnx), str(messy_folder / "gray.png"), "-o", str(out)]) == 0
    assert (out / "gray.png").is_file()


def test_foreign_onnx_model_without_metadata(tiny_onnx, messy_folder, tmp_path, capsys):
    import onnx

    model = onnx.load(str(tiny_onnx))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    img = str(messy_folder / "odd.png")
    assert main(["infer", "--model", str(bare), img, "-o", str(tmp_path / "a")]) == 2
    assert "--resize" in capsys.readouterr().err  # 50x70 is no multiple of 16: a clear hint
    assert main(["infer", "--model", str(bare), img, "-o", str(tmp_path / "b"), "--resize"]) == 0
    assert Image.open(tmp_path / "b" / "odd.png").size == (70, 50)


def test_self_check_inputs_without_the_runs_data():
    from nectargan.inference.samples import check_batches

    info = ModelInfo(channels=3, n_downs=4, crop_size=32)
    batches = check_batches(None, info, (32, 32), dynamic=True)
    assert [b.shape for _, b in batches] == [(4, 3, 32, 32), (2, 3, 32, 48)]
    assert batches[0][0] == "4 synthetic images"


def test_epoch_choice_and_output_that_is_a_file(tiny_experiment, messy_folder, tmp_path, capsys):
    img = str(messy_folder / "gray.png")
    args = ["infer", "--experiment", str(tiny_experiment), img]
    assert main([*args, "-o", str(tmp_path / "e1"), "--epoch", "1"]) == 0
    assert "after epoch 1" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main([*args, "-o", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    # Before: an output under a file was a NotADirectoryError traceback (exit 1).
    assert main([*args, "-o", str(tmp_path / "file" / "out")]) == 2
    err = capsys.readouterr().err
    assert f"is inside '{tmp_path / 'file'}', which is a file" in err and "Traceback" not in err


def test_model_that_is_a_folder_or_a_torchscript_file(tmp_path, messy_folder, capsys):
    pytest.importorskip("onnxruntime")
    img = str(messy_folder / "gray.png")
    out = ["-o", str(tmp_path / "out")]
    assert main(["infer", "--model", str(tmp_path), img, *out]) == 2
    assert f"model file '{tmp_path}' is a folder; expected an .onnx file" in capsys.readouterr().err
    scripted = tmp_path / "g.torchscript.pt"
    scripted.write_bytes(b"PK\x03\x04 not onnx")
    assert main(["infer", "--model", str(scripted), img, *out]) == 2
    assert "--model takes an .onnx file" in capsys.readouterr().err
