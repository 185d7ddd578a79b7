"""Tiled inference (no seam, sizes kept, close to one pass, ONNX too) and never overwriting inputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nectargan.cli.main import main
from nectargan.dataset.io import list_images
from nectargan.inference.backends import TorchBackend
from nectargan.inference.checkpoints import load_inference_generator
from nectargan.inference.memory import forward_bytes, image_bytes, parse_size
from nectargan.inference.model_info import ModelInfo
from nectargan.inference.sizing import fit_image
from nectargan.inference.tiling import TilePlan, TileRequest, choose_plan, make_plan, run_tiled


def _arr(path):
    return np.asarray(Image.open(path), dtype=np.int16)


@pytest.fixture(scope="module")
def scene(dataroot):
    """A 190x170 picture of the kind the tiny model was trained on (a test A half, enlarged)."""
    pair = Image.open(list_images(dataroot / "test")[0]).convert("RGB")
    w, h = pair.size
    return pair.crop((0, 0, w // 2, h)).resize((190, 170), Image.BICUBIC)


@pytest.fixture(scope="module")
def backend(tiny_experiment):
    generator, _, info, _ = load_inference_generator(tiny_experiment, "latest")
    return TorchBackend(generator, info, "cpu")


def _borders(plan: TilePlan, length: int) -> list[int]:
    """Positions k where a tile starts or ends inside the image (between k-1 and k)."""
    starts = plan.starts(length)
    return sorted(({s for s in starts[1:]} | {s + plan.tile for s in starts[:-1]}) - {length})


def _column_jumps(field: np.ndarray) -> np.ndarray:
    """Mean |difference| between neighbouring columns of a (C, H, W) field: W-1 values."""
    return np.abs(np.diff(field, axis=2)).mean(axis=(0, 1))


def _seam_ratio(tiled: np.ndarray, whole: np.ndarray, plan: TilePlan) -> float:
    """The largest jump across a tile border of what tiling changed, over the 90th
    percentile of the jumps across all other columns (> 1: a border stands out)."""
    jumps = _column_jumps(tiled - whole)
    at = [k - 1 for k in _borders(plan, tiled.shape[2])]
    return float(jumps[at].max() / np.quantile(np.delete(jumps, at), 0.9))


def test_no_seam_on_a_real_model_and_a_hard_cut_would_show(backend, scene):
    fitted = fit_image(scene, "pad", backend.info.size_multiple)
    whole = backend.run(fitted.array[None])[0]
    plan = make_plan(64, backend.info.size_multiple, 16)
    tiled = run_tiled(backend.run, fitted.array, plan)
    assert len(plan.starts(tiled.shape[2])) >= 3 and len(plan.starts(tiled.shape[1])) >= 3
    assert _seam_ratio(tiled, whole, plan) <= 1.0
    # The output's own jumps across borders are no larger than its jumps elsewhere.
    jumps = _column_jumps(tiled)
    at = [k - 1 for k in _borders(plan, tiled.shape[2])]
    assert jumps[at].max() <= np.delete(jumps, at).max()
    # The same measure flags tiles pasted side by side without blending.
    hard = TilePlan(64, 0, backend.info.size_multiple)
    assert _seam_ratio(run_tiled(backend.run, fitted.array, hard), whole, hard) > 3.0


def test_tiled_matches_one_pass_in_tile_interiors(backend, scene):
    m = backend.info.size_multiple
    fitted = fit_image(scene, "pad", m)
    whole = backend.run(fitted.array[None])[0]
    plan = make_plan(64, m, 16)
    diff = np.abs(run_tiled(backend.run, fitted.array, plan) - whole)
    interior = np.ones(diff.shape[1:], dtype=bool)
    for axis, length in ((0, diff.shape[1]), (1, diff.shape[2])):
        for k in _borders(plan, length):
            lo, hi = max(0, k - plan.overlap), k + plan.overlap
            if axis == 0:
                interior[lo:hi, :] = False
            else:
                interior[:, lo:hi] = False
    assert interior.any()
    assert diff[:, interior].max() <= 1 / 255  # well under one output level
    assert diff.max() <= 8 / 255  # margins differ a little; the blend keeps that small


def test_tile_starts_lie_on_the_grid_and_cover_the_image():
    for length in (32, 96, 160, 192, 1024, 3072):
        for tile, overlap in ((64, 16), (64, 32), (512, 128)):
            plan = make_plan(tile, 16, overlap)
            starts = plan.starts(length)
            assert all(s % 16 == 0 for s in starts) and starts[0] == 0
            assert starts[-1] + min(plan.tile, length) == length
            assert all(
                b - a <= plan.tile - plan.overlap for a, b in zip(starts, starts[1:], strict=False)
            )


def test_cli_tiles_keep_sizes_and_say_so(tiny_experiment, scene, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    scene.save(src / "scene.png")
    scene.crop((0, 0, 150, 97)).save(src / "odd.png")
    base = ["infer", "--experiment", str(tiny_experiment), str(src)]
    assert main([*base, "-o", str(tmp_path / "one"), "--tile", "0"]) == 0
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "tiles"), "--tile", "60"]) == 0
    err = capsys.readouterr().err
    assert (
        "tiled: 16 tiles of 64 px, overlap 16 px (--tile 60 rounded up to a multiple of 16)" in err
    )
    for name, size in (("scene.png", (190, 170)), ("odd.png", (150, 97))):
        assert Image.open(tmp_path / "tiles" / name).size == size
        a, b = _arr(tmp_path / "tiles" / name), _arr(tmp_path / "one" / name)
        assert np.abs(a - b).max() <= 8


def test_automatic_tiling_above_the_budget_for_checkpoint_and_onnx(
    tiny_experiment, tiny_onnx, scene, tmp_path, capsys
):
    src = tmp_path / "scene.png"
    scene.save(src)
    outs = {}
    for flag, value in (("--experiment", tiny_experiment), ("--model", tiny_onnx)):
        outs[flag] = tmp_path / flag.strip("-")
        args = ["infer", flag, str(value), str(src), "-o", str(outs[flag])]
        assert main([*args, "--memory-budget", "1M"]) == 0
        err = capsys.readouterr().err
        assert "tiled:" in err and "over the 1.0 MiB budget (--memory-budget)" in err, err
        assert "--tile 0 turns tiling off" in err
        assert Image.open(outs[flag] / "scene.png").size == (190, 170)
    a, b = _arr(outs["--experiment"] / "scene.png"), _arr(outs["--model"] / "scene.png")
    assert np.abs(a - b).max() <= 2
    # Under a generous budget nothing is tiled and nothing is said about it.
    args = ["infer", "--model", str(tiny_onnx), str(src), "-o", str(tmp_path / "big")]
    assert main([*args, "--memory-budget", "4G"]) == 0
    assert "tile" not in capsys.readouterr().err


def test_automatic_choice_keeps_a_tile_under_the_budget():
    info = ModelInfo(channels=3, n_downs=8, crop_size=256, features=64)
    hw = (3072, 4096)
    need = forward_bytes(info, *hw)
    assert need is not None and need > 4 * 1024**3  # the default net on 12 MP: several GiB
    budget = 1024**3
    plan, note = choose_plan(info, hw, 1, TileRequest(budget_bytes=budget, budget_source="test"))
    assert plan is not None and plan.tile % 256 == 0 and plan.overlap % 256 == 0
    held = image_bytes(3, *hw)  # the whole-image buffers tiling keeps
    assert forward_bytes(info, plan.tile, plan.tile) + held <= budget
    assert forward_bytes(info, plan.tile + 256, plan.tile + 256) + held > budget
    assert "over the 1.0 GiB budget (test)" in note
    assert choose_plan(info, (512, 512), 1, TileRequest(budget_bytes=budget))[0] is None


def test_bad_tile_options_are_one_line_errors(tiny_experiment, scene, tmp_path, capsys):
    src = tmp_path / "scene.png"
    scene.save(src)
    base = ["infer", "--experiment", str(tiny_experiment), str(src), "-o", str(tmp_path / "o")]
    for extra, expected in (
        (["--tile", "-3"], "--tile: expected a tile size"),
        (["--tile", "big"], "--tile: expected a tile size"),
        (["--memory-budget", "lots"], "--memory-budget: expected a size such as 2G"),
        (["--tile", "64", "--resize"], "--tile 64: tiles need the default pad mode"),
    ):
        code = _run(base + extra)
        err = capsys.readouterr().err
        assert code == 2 and expected in err and "Traceback" not in err, (extra, err)
    assert parse_size("2G") == 2 * 1024**3 and parse_size("1500") == 1500 * 1024**2


def _run(args):
    try:
        return main(args)
    except SystemExit as exc:  # argparse's own refusals
        return exc.code


@pytest.mark.parametrize("overwrite", [True, False])
def test_output_folder_that_holds_the_inputs_is_refused(
    tiny_experiment, scene, tmp_path, capsys, overwrite
):
    folder = tmp_path / "photos"
    folder.mkdir()
    scene.save(folder / "scene.png")
    before = (folder / "scene.png").read_bytes()
    args = ["infer", "--experiment", str(tiny_experiment), str(folder), "-o", str(folder)]
    assert main([*args, *(["--overwrite"] if overwrite else [])]) == 2
    err = capsys.readouterr().err
    assert f"would replace the input image '{folder / 'scene.png'}'" in err
    assert "Traceback" not in err and err.count("error:") == 1
    assert (folder / "scene.png").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["scene.png"]
