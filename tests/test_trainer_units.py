"""Trainer building blocks that need no training: experiment dirs, precision, checkpoints,
callback kwargs, progress bar."""

from __future__ import annotations

import io
import json
import os
import time

import pytest
import torch

from nectargan.trainers import checkpoint as ckpt
from nectargan.trainers import precision
from nectargan.trainers.data import auto_num_workers
from nectargan.trainers.experiment import create_experiment_dir, existing_versions
from nectargan.trainers.pix2pix_trainer import example_indices
from nectargan.trainers.resume.choose import find_checkpoint
from nectargan.trainers.trainer import _split_callback_kwargs, is_local_url
from nectargan.utils.durations import format_duration
from nectargan.utils.progress_bar import ProgressBar

# -- experiment directories ------------------------------------------------------------


def test_versions_start_at_one_and_increment(tmp_path):
    assert create_experiment_dir(tmp_path / "out", "run").name == "run_v1"
    assert create_experiment_dir(tmp_path / "out", "run").name == "run_v2"


def test_v10_follows_v9_numerically(tmp_path):
    for v in (1, 2, 9):
        (tmp_path / f"run_v{v}").mkdir()
    assert create_experiment_dir(tmp_path, "run").name == "run_v10"
    assert create_experiment_dir(tmp_path, "run").name == "run_v11"


def test_similar_names_and_files_do_not_count(tmp_path):
    for name in ("run_big_v7", "myrun_v5", "run_v3x", "run_v", "run-v8"):
        (tmp_path / name).mkdir()
    (tmp_path / "run_v20").write_text("a file, not an experiment")
    assert existing_versions(tmp_path, "run") == []
    assert create_experiment_dir(tmp_path, "run").name == "run_v1"
    # and "run" versions do not leak into "run_big"
    assert create_experiment_dir(tmp_path, "run_big").name == "run_big_v8"


def test_regex_characters_in_names_are_literal(tmp_path):
    (tmp_path / "axb_v4").mkdir()
    assert create_experiment_dir(tmp_path, "a.b").name == "a.b_v1"


@pytest.mark.parametrize("name", ["", "../up", "a/b", ".hidden", "sp ace"])
def test_bad_experiment_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="common.experiment_name"):
        create_experiment_dir(tmp_path, name)


# -- device and precision --------------------------------------------------------------


def test_cpu_precision_modes(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    assert precision.resolve_precision("off", cpu).dtype is None
    assert precision.resolve_precision("bf16", cpu).dtype is torch.bfloat16
    assert precision.resolve_precision("auto", cpu).dtype is torch.bfloat16
    for mode in ("off", "auto", "bf16"):
        assert not precision.resolve_precision(mode, cpu).use_scaler
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    assert precision.resolve_precision("auto", cpu).dtype is None
    with pytest.warns(UserWarning, match="without native bf16 support"):
        assert precision.resolve_precision("bf16", cpu).dtype is torch.bfloat16


def test_fp16_on_cpu_is_refused_with_the_alternatives():
    with pytest.raises(ValueError, match=r"'fp16' needs a CUDA device.*'bf16', 'auto' or 'off'"):
        precision.resolve_precision("fp16", torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only path")
def test_cuda_device_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match=r"common.device: 'cuda' needs CUDA"):
        precision.resolve_device("cuda")
    with pytest.raises(ValueError, match="common.device"):
        precision.resolve_device("tpu9")
    assert precision.resolve_device("auto").type == "cpu"


def test_no_scaler_is_a_pass_through():
    p = torch.nn.Parameter(torch.ones(()))
    opt = torch.optim.SGD([p], lr=1.0)
    scaler = precision.Precision("cpu", None, use_scaler=False).make_scaler()
    loss = p * 3
    assert scaler.scale(loss) is loss
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert p.item() == pytest.approx(-2.0)


def test_auto_workers_leave_small_cpu_machines_single_process(monkeypatch):
    import nectargan.trainers.data as data

    monkeypatch.setattr(data, "usable_cores", lambda: 2)
    assert auto_num_workers(torch.device("cpu")) == 0
    monkeypatch.setattr(data, "usable_cores", lambda: 16)
    assert auto_num_workers(torch.device("cpu")) == 4


# -- checkpoints -------------------------------------------------------------------------


def _save(exp, name, epoch):
    return ckpt.save_checkpoint(
        ckpt.checkpoint_dir(exp) / name, {"epoch": epoch, "w": torch.ones(2)}
    )


def test_checkpoint_round_trip_and_latest_pointer(tmp_path):
    _save(tmp_path, "epoch_0001.pt", 1)
    _save(tmp_path, "epoch_0002.pt", 2)
    assert find_checkpoint(tmp_path).name == "epoch_0002.pt"
    _save(tmp_path, ckpt.INTERRUPTED, 2)
    assert find_checkpoint(tmp_path).name == ckpt.INTERRUPTED
    assert find_checkpoint(tmp_path, 1).name == "epoch_0001.pt"
    state = ckpt.load_checkpoint(find_checkpoint(tmp_path, 2))
    assert state["epoch"] == 2 and torch.equal(state["w"], torch.ones(2))
    assert not list(ckpt.checkpoint_dir(tmp_path).glob("*.tmp"))


def test_latest_without_pointer_uses_newest_file(tmp_path):
    old = _save(tmp_path, "epoch_0003.pt", 3)
    new = _save(tmp_path, "epoch_0001.pt", 1)
    (ckpt.checkpoint_dir(tmp_path) / ckpt.LATEST).unlink()
    os.utime(old, ns=(time.time_ns() - 10**9, time.time_ns() - 10**9))
    assert find_checkpoint(tmp_path) == new


def test_missing_checkpoints_name_what_exists(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        find_checkpoint(tmp_path / "nope")
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint in"):
        find_checkpoint(tmp_path)
    _save(tmp_path, "epoch_0002.pt", 2)
    with pytest.raises(ckpt.CheckpointError, match=r"epoch 5 .*epochs with checkpoints: 2"):
        find_checkpoint(tmp_path, 5)


def test_foreign_or_corrupt_files_are_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ckpt.CheckpointError, match="not a NectarGAN checkpoint"):
        ckpt.load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "broken.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ckpt.CheckpointError, match="cannot read checkpoint"):
        ckpt.load_checkpoint(tmp_path / "broken.pt")


# -- small helpers -------------------------------------------------------------------------


def test_callback_kwargs_split_and_typos():
    out = _split_callback_kwargs({"train_step": {"a": 1}})
    assert out == {"on_epoch_start": {}, "train_step": {"a": 1}, "on_epoch_end": {}}
    with pytest.raises(ValueError, match=r"unknown hook\(s\) \['train_stpe'\]"):
        _split_callback_kwargs({"train_stpe": {}})


def test_example_indices_are_fixed_and_spread():
    assert example_indices(10, 4) == [0, 3, 6, 9]
    assert example_indices(3, 8) == [0, 1, 2]
    assert example_indices(5, 0) == [] and example_indices(0, 3) == []
    assert example_indices(7, 1) == [0]


def test_local_urls():
    assert is_local_url("http://localhost") and is_local_url("127.0.0.1")
    assert is_local_url("http://[::1]") and not is_local_url("http://example.org")


def test_progress_bar_in_a_pipe_prints_plain_lines():
    out = io.StringIO()
    bar = ProgressBar(4, desc="epoch 1/2", stream=out, log_interval=3600)
    bar.update(1, {"G_L1": 12.3456})
    bar.update(1)
    bar.write("epoch 1 done")
    bar.update(2)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/2 [") and "1/4" in lines[0] and "G_L1 12.3" in lines[0]
    assert "it/s" in lines[0] and "ETA" in lines[0]
    assert lines[1] == "epoch 1 done"
    assert "4/4" in lines[-1] and "\r" not in out.getvalue()
    assert len(lines) == 3  # first update, the write, the final update (close adds nothing)


def test_progress_bar_on_a_terminal_redraws_in_place():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    with ProgressBar(3, stream=out, min_interval=0) as bar:
        for _ in range(3):
            bar.update()
    text = out.getvalue()
    assert text.count("\r") >= 3 and text.endswith("\n") and "3/3" in text


def test_format_duration():
    assert format_duration(5) == "5.0s"  # one format everywhere (issue 21): was "0:05"
    assert format_duration(3725) == "1h02m05s"  # was "1:02:05"
    assert format_duration(float("nan")) == "?"


def test_demo_config_is_valid_and_small():
    from nectargan.cli.train_cmd import packaged_config_path
    from nectargan.config import Config

    cfg = Config.load(packaged_config_path("demo"))
    assert cfg.dataloader.crop_size <= 64 and cfg.dataloader.synthetic.n <= 1000
    json.loads(packaged_config_path("demo").read_text())


def test_epoch_times_are_appended_across_resumes(tmp_path):
    from nectargan.trainers.timing import TIMING_FILE, read_timing, record_epoch

    assert read_timing(tmp_path) == []
    record_epoch(tmp_path, 1, 2.5, 40)
    record_epoch(tmp_path, 2, 2.25, 40)
    epochs = read_timing(tmp_path)
    assert [(e["epoch"], e["seconds"], e["steps"]) for e in epochs] == [(1, 2.5, 40), (2, 2.25, 40)]
    (tmp_path / TIMING_FILE).write_text("{not json")
    assert read_timing(tmp_path) == []
