"""``nectargan export`` and ``nectargan.onnx``: parity with torch, metadata, self-check."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from nectargan.cli.main import main
from nectargan.errors import CheckpointUserError
from nectargan.inference.checkpoints import load_inference_generator, parse_epoch
from nectargan.inference.model_info import config_digest
from nectargan.utils.atomic import current_umask

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _generator(experiment):
    generator, config, info, _ = load_inference_generator(experiment)
    return generator, config, info


def test_onnx_matches_torch_dynamic_batch_and_non_square(tiny_experiment, tiny_onnx):
    session = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("input", "output")
    assert inp.type == out.type == "tensor(float)"
    assert inp.shape[1] == 3 and not any(isinstance(d, int) for d in (inp.shape[0], *inp.shape[2:]))
    generator, _, _ = _generator(tiny_experiment)
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        want = generator(x).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    assert got.shape == (2, 3, 64, 96)
    assert np.abs(got - want).max() < 1e-4


def test_onnx_metadata_props(tiny_experiment, tiny_onnx):
    props = {p.key: p.value for p in onnx.load(str(tiny_onnx)).metadata_props}
    _, config, info = _generator(tiny_experiment)
    import nectargan

    assert props["nectargan.version"] == nectargan.__version__
    assert props["nectargan.epoch"] == "2"
    assert props["nectargan.n_downs"] == "4" and props["nectargan.size_multiple"] == "16"
    assert props["nectargan.channels"] == "3"
    assert props["nectargan.direction"] == "AtoB"
    assert props["nectargan.normalization"] == "x/127.5-1"
    assert props["nectargan.config_digest"] == config_digest(config)


def test_export_refuses_existing_file_and_names_it(tiny_experiment, tiny_onnx, capsys):
    rc = main(["export", "--experiment", str(tiny_experiment), "--output", str(tiny_onnx)])
    assert rc == 2
    assert str(tiny_onnx) in capsys.readouterr().err


def test_failed_self_check_exits_1_and_keeps_no_file(
    tiny_experiment, tmp_path, monkeypatch, capsys
):
    # A negative tolerance fails any export, standing in for a wrong graph.
    monkeypatch.setattr("nectargan.onnx.selfcheck.FP32_TOLERANCE", -1.0)
    out = tmp_path / "bad.onnx"
    args = ["export", "--experiment", str(tiny_experiment), "-o", str(out), "--opset", "17"]
    assert main(args) == 1
    assert "disagree" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary sibling


def test_static_export_with_old_opset_and_infer_resizes(tiny_experiment, tmp_path):
    from PIL import Image

    out = tmp_path / "static.onnx"
    args = ["export", "--experiment", str(tiny_experiment), "-o", str(out)]
    assert main([*args, "--static", "64", "96", "--opset", "17"]) == 0
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 17
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    assert dims == [3, 64, 96]
    img = tmp_path / "in.png"
    Image.new("RGB", (70, 50), (200, 30, 60)).save(img)
    assert main(["infer", "--model", str(out), str(img), "-o", str(tmp_path / "o")]) == 0
    assert Image.open(tmp_path / "o" / "in.png").size == (70, 50)


def test_static_size_must_be_a_multiple(tiny_experiment, tmp_path, capsys):
    args = ["export", "--experiment", str(tiny_experiment), "-o", str(tmp_path / "x.onnx")]
    assert main([*args, "--static", "50", "64"]) == 2
    assert "multiple of 2**n_downs=16" in capsys.readouterr().err


def test_torchscript_export_matches_and_carries_metadata(tiny_experiment, tmp_path):
    from nectargan.inference.torchscript import load_torchscript

    out = tmp_path / "g.pt"
    args = ["export", "--experiment", str(tiny_experiment), "--format", "torchscript"]
    assert main([*args, "-o", str(out)]) == 0
    module, meta = load_torchscript(out)
    assert meta["nectargan.size_multiple"] == "16"
    generator, _, _ = _generator(tiny_experiment)
    x = torch.rand(2, 3, 48, 80) * 2 - 1
    with torch.no_grad():
        assert torch.equal(module(x), generator(x))


def test_missing_extra_names_it(tiny_experiment, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    assert (
        main(["export", "--experiment", str(tiny_experiment), "-o", str(tmp_path / "m.onnx")]) == 2
    )
    err = capsys.readouterr().err
    assert "onnxscript" in err and "nectargan[export]" in err


def test_unknown_epoch_lists_available(tiny_experiment, tmp_path, capsys):
    args = ["export", "--experiment", str(tiny_experiment), "--epoch", "9"]
    assert main([*args, "-o", str(tmp_path / "e.onnx")]) == 2
    assert "epochs with checkpoints: 1, 2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "want"), [("latest", "latest"), ("-1", "latest"), ("3", 3), (0, 0), ("best", "best")]
)
def test_parse_epoch(text, want):
    assert parse_epoch(text) == want


@pytest.mark.parametrize("text", ["best?", "-2", "1.5"])
def test_parse_epoch_refuses(text):
    with pytest.raises(CheckpointUserError, match="--epoch"):
        parse_epoch(text)


def test_onnx_converter_documented_example(tiny_experiment):
    """Upstream's documented ONNXConverter example, verbatim but for paths and the epoch."""
    from nectargan.onnx.converter import ONNXConverter

    converter = ONNXConverter(
        experiment_dir=str(tiny_experiment),  # Path to experiment directory with model to convert
        config=str(tiny_experiment / "config.json"),  # Path to .json config file for model settings
        load_epoch=2,  # Load the epoch2 checkpoint for conversion
        in_channels=3,  # Model input channels, 3 = RGB
        crop_size=256,  # Target input tensor shape: [1, 3, 256, 256]
        device="cpu",
    )  # Target cpu (or 'cuda') for converted model
    converter.convert_model(
        export_params=True,  # Generally we want to export our model weights
        opset_version=11,  # Or whatever version you want. Higher version = more features
        do_constant_folding=True,  # This actually won't do anything if opset_version>10
        input_names=["my_input_name"],  # Whatever input names you want
        output_names=["my_output_name"],  # Whatever output names you want
        suppress_onnx_warnings=True,
    )  # Or False if you want it to print the warnings
    path = tiny_experiment / "epoch2.onnx"
    model = onnx.load(str(path))
    assert model.opset_import[0].version == 11
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "my_input_name"
    assert session.get_outputs()[0].name == "my_output_name"
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)
    generator, _, _ = _generator(tiny_experiment)
    with torch.no_grad():
        want = generator(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(None, {"my_input_name": x})[0] - want).max() < 1e-4
    assert converter.report["max_abs_diff"] < 1e-4
    path.unlink()


def test_onnx_converter_refuses_a_different_architecture(tiny_experiment, tmp_path):
    from nectargan.errors import ConfigUserError
    from nectargan.onnx.converter import ONNXConverter

    cfg = json.loads((tiny_experiment / "config.json").read_text())
    cfg["train"]["generator"]["features"] = 16
    with pytest.raises(ConfigUserError, match="features"):
        ONNXConverter(tiny_experiment, cfg, load_epoch=2)


def test_onnx_converter_takes_an_upstream_config(dataroot, tmp_path):
    """Upstream's example passes upstream's own training config: converted, load_epoch read."""
    from _support import tiny_training_config

    from nectargan.onnx.converter import ONNXConverter
    from nectargan.trainers import Pix2pixTrainer

    # Upstream's U-Net always uses instance norm without scale/shift, so the run must too.
    generator = {"features": 8, "n_downs": 5, "norm": "instance_noaffine"}
    cfg = tiny_training_config(
        tmp_path, dataroot, "inorm", train={"epochs_decay": 0, "generator": generator}
    )
    trainer = Pix2pixTrainer(cfg)
    trainer.fit()
    trainer.close()
    upstream = {
        "config": {
            "config_type": "pix2pix",
            "dataloader": {"load": {"input_nc": 3, "load_size": 32, "crop_size": 32}},
            "train": {
                "load": {"continue_train": False, "load_epoch": 1},
                # upstream counts neither its first down block nor its bottleneck: 3 is our 5
                "generator": {"features": 8, "n_downs": 3, "block_type": "UnetBlock"},
            },
        }
    }
    path = tmp_path / "train1_config.json"
    path.write_text(json.dumps(upstream))
    converter = ONNXConverter(experiment_dir=trainer.experiment_dir, config=path, device="cpu")
    assert converter.load_epoch == 1 and converter.info.epoch == 1
    out = converter.convert_model(opset_version=17)
    assert out.endswith("epoch1.onnx") and converter.report["max_abs_diff"] < 1e-4


def test_epoch_best_uses_best_pt(tiny_experiment, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_experiment, run)
    img = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (32, 32), (10, 200, 30)).save(img)
    args = ["infer", "--experiment", str(run), "--epoch", "best", str(img)]
    (run / "checkpoints" / "best.pt").unlink(missing_ok=True)  # live validation may write one
    assert main([*args, "-o", str(tmp_path / "a")]) == 2
    assert "best.pt" in capsys.readouterr().err
    shutil.copy(run / "checkpoints" / "epoch_0001.pt", run / "checkpoints" / "best.pt")
    assert main([*args, "-o", str(tmp_path / "b")]) == 0
    assert "best.pt (after epoch 1)" in capsys.readouterr().err


def test_output_folder_gets_the_default_name_with_open_permissions(tiny_experiment, tmp_path):
    # Before: `--output DIR/` wrote a file named DIR (mode 0600), and `--output
    # EXISTING_DIR --overwrite` was an IsADirectoryError traceback.
    folder = tmp_path / "models"
    folder.mkdir()
    for out in (folder, f"{tmp_path / 'new'}/"):
        assert main(["export", "--experiment", str(tiny_experiment), "-o", str(out)]) == 0
    for written in (folder / "epoch_0002.onnx", tmp_path / "new" / "epoch_0002.onnx"):
        assert written.is_file()
        assert written.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def test_output_under_a_file_is_a_user_error(tiny_experiment, tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    out = tmp_path / "plain" / "m.onnx"
    assert main(["export", "--experiment", str(tiny_experiment), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--output '{out}' is inside '{tmp_path / 'plain'}', which is a file" in err
    assert "Traceback" not in err
