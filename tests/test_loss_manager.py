"""LossManager: registration, weighted/raw values, recording cost, history, loss log."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch

import nectargan.losses.loss_manager as loss_manager_module
from nectargan.losses.loss_log import INDEX_NAME, SEGMENT_DIR, read_loss_log
from nectargan.losses.loss_manager import LossManager, RegisteredLoss
from nectargan.losses.losses import l1_loss
from nectargan.scheduling import Schedule


def mean_diff(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """A loss whose raw value is easy to predict: mean(x - y)."""
    return (x - y).mean()


def value(v: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Arguments making ``mean_diff`` return exactly ``v``."""
    return torch.tensor([v]), torch.tensor([0.0])


def manager(tmp: Path | None = None, **kwargs) -> LossManager:
    lm = LossManager(tmp, **kwargs)
    lm.register_loss("G_GAN", mean_diff, weight=1.0, tags=["G"])
    lm.register_loss("G_L1", mean_diff, weight=100.0, tags=["G"])
    lm.register_loss("D_real", mean_diff, weight=0.5, tags=["D"])
    return lm


def segments(tmp: Path) -> list[Path]:
    return sorted((tmp / SEGMENT_DIR).glob("*.json"))


# -- registration ---------------------------------------------------------------------


def test_registering_a_name_twice_is_an_error() -> None:
    lm = manager()
    with pytest.raises(ValueError, match=r"'G_L1' is already registered"):
        lm.register_loss("G_L1", mean_diff)
    assert lm.names == ["G_GAN", "G_L1", "D_real"]


def test_init_from_spec_passes_arguments_and_checks_the_result() -> None:
    def spec(scale: float, *, tag: str) -> dict[str, RegisteredLoss]:
        return {
            "A": RegisteredLoss(mean_diff, scale, tags=(tag,)),
            "B": RegisteredLoss(mean_diff, 2 * scale),
        }

    lm = LossManager()
    lm.init_from_spec(spec, 3.0, tag="G")
    assert lm.names == ["A", "B"] and lm.weight_at("B", 0) == 6.0
    with pytest.raises(TypeError, match="must return a dict"):
        LossManager().init_from_spec(lambda: [1, 2])
    with pytest.raises(TypeError, match="'X' must be a RegisteredLoss"):
        LossManager().init_from_spec(lambda: {"OK": RegisteredLoss(mean_diff), "X": mean_diff})
    with pytest.raises(ValueError, match=r"losses \['A'\] are already registered"):
        lm.init_from_spec(lambda: {"C": RegisteredLoss(mean_diff), "A": RegisteredLoss(mean_diff)})
    assert lm.names == ["A", "B"]  # nothing half-registered


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weight": math.inf}, "weight must be a finite number, got inf"),
        ({"weight": "1"}, "weight must be a finite number, got '1'"),
        ({"tags": ["G", ""]}, "tags must be non-empty strings"),
        ({"schedule": 3}, "schedule must be a Schedule or callable"),
    ],
)
def test_bad_registrations_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        LossManager().register_loss("X", mean_diff, **kwargs)


def test_unknown_name_raises_key_error_listing_valid_names() -> None:
    with pytest.raises(KeyError, match=r"'G_L2'.*\['G_GAN', 'G_L1', 'D_real'\]"):
        manager().compute_loss_xy("G_L2", *value(1.0), epoch=0)


# -- values ---------------------------------------------------------------------------


def test_compute_returns_the_weighted_tensor_with_gradient() -> None:
    x = torch.tensor([0.12], requires_grad=True)
    out = manager().compute_loss_xy("G_L1", x, torch.tensor([0.0]), epoch=0)
    out.backward()
    assert out.item() == pytest.approx(12.0) and x.grad.item() == pytest.approx(100.0)


def test_values_are_weighted_by_default_and_raw_on_request() -> None:
    lm = manager()
    lm.compute_loss_xy("G_L1", *value(0.12), epoch=0)
    assert lm.get_loss_values() == {"G_L1": pytest.approx(12.0)}  # G_L1 = 12 means 0.12 x 100
    assert lm.get_loss_values(weighted=False) == {"G_L1": pytest.approx(0.12)}
    assert lm.get_loss_weights() == {"G_L1": 100.0}


def test_before_any_step_values_are_empty_not_an_index_error(capsys) -> None:
    lm = manager()
    assert lm.get_loss_values(query=["G"]) == {} and lm.get_loss_tensors() == {}
    assert "no losses computed yet" in lm.print_losses(0, 0)
    assert lm.get_history("G_L1") == []


def test_query_by_tag_keeps_registration_order_and_latest_value() -> None:
    lm = manager()
    for v in (3.0, 4.0):
        lm.compute_loss_xy("D_real", *value(v), epoch=0)
        lm.compute_loss_xy("G_L1", *value(v / 100), epoch=0)
        lm.compute_loss_xy("G_GAN", *value(v), epoch=0)
    assert list(lm.get_loss_values(query=["G"]).items()) == [
        ("G_GAN", 4.0),
        ("G_L1", pytest.approx(4.0)),
    ]
    assert lm.get_loss_values(query=["D"]) == {"D_real": 2.0}
    assert list(lm.get_loss_values()) == ["G_GAN", "G_L1", "D_real"]
    assert lm.get_loss_values(query=["G_L1", "D"]) == {"G_L1": pytest.approx(4.0), "D_real": 2.0}


def test_unknown_query_is_an_error_not_a_silent_empty_dict() -> None:
    with pytest.raises(ValueError, match=r"\['g'\] matches no tag or name; tags: \['D', 'G'\]"):
        manager().get_loss_values(query=["g"])


def test_precision_rounds() -> None:
    lm = manager()
    lm.compute_loss_xy("G_GAN", *value(0.123456), epoch=0)
    assert lm.get_loss_values(precision=3) == {"G_GAN": 0.123}
    with pytest.raises(ValueError, match="precision"):
        lm.get_loss_values(precision=-1)


def test_loss_tensors_for_all_reduce() -> None:
    lm = manager()
    lm.compute_loss_xy("G_L1", *value(0.5), epoch=0)
    tensors = lm.get_loss_tensors(["G"])
    assert set(tensors) == {"G_L1"} and isinstance(tensors["G_L1"], torch.Tensor)
    assert not tensors["G_L1"].requires_grad and tensors["G_L1"].item() == 50.0
    assert lm.get_loss_tensors(["G"], weighted=False)["G_L1"].item() == 0.5


def test_non_scalar_losses_are_refused() -> None:
    lm = LossManager()
    lm.register_loss("bad", lambda x, y: x - y)
    with pytest.raises(ValueError, match=r"'bad' must return a scalar tensor, got \(2,\)"):
        lm.compute_loss_xy("bad", torch.zeros(2), torch.zeros(2), 0)


def test_record_false_does_not_touch_values_or_history() -> None:
    lm = manager()
    lm.compute_loss_xy("G_GAN", *value(1.0), epoch=0, record=False)
    assert lm.get_loss_values() == {} and lm.get_history("G_GAN") == []


# -- schedules ------------------------------------------------------------------------


def test_scheduled_weights_are_applied_and_reported() -> None:
    lm = LossManager()
    lm.register_loss(
        "G_L1", mean_diff, weight=7.0, schedule=Schedule(0, 10, 100.0, 0.0), tags=["G"]
    )
    lm.register_loss("G_L2", mean_diff, weight=7.0, tags=["G"])
    assert lm.compute_loss_xy("G_L1", *value(1.0), epoch=5).item() == pytest.approx(50.0)
    assert lm.compute_loss_xy("G_L2", *value(1.0), epoch=5).item() == pytest.approx(7.0)
    assert lm.get_loss_weights() == {"G_L1": 50.0, "G_L2": 7.0}
    lm.register_loss("bad", mean_diff, schedule=lambda e: math.nan)
    with pytest.raises(ValueError, match="schedule of loss 'bad' returned nan at epoch 3"):
        lm.compute_loss_xy("bad", *value(1.0), epoch=3)


# -- recording cost and history -------------------------------------------------------


def test_no_host_sync_per_step_values_are_converted_in_batches(monkeypatch) -> None:
    calls: list[int] = []
    real = loss_manager_module.to_floats

    def counting(tensors):
        calls.append(len(tensors))
        return real(tensors)

    monkeypatch.setattr(loss_manager_module, "to_floats", counting)

    def no_item(self):
        raise AssertionError("Tensor.item() called while recording")

    lm = manager(sync_every=8)
    with monkeypatch.context() as m:
        m.setattr(torch.Tensor, "item", no_item)
        for step in range(20):
            lm.compute_loss_xy("G_GAN", *value(float(step)), epoch=0)
    assert calls == [8, 8]  # 20 steps -> 2 batched transfers; 4 still pending
    assert [r.raw for r in lm.get_history("G_GAN")] == list(map(float, range(20)))


def test_history_is_bounded_and_holds_raw_and_weight() -> None:
    lm = manager(history_size=5, sync_every=3)
    for step in range(12):
        lm.compute_loss_xy("G_L1", *value(step / 100), epoch=step // 4)
    history = lm.get_history("G_L1")
    assert [r.step for r in history] == [7, 8, 9, 10, 11]
    assert history[-1].epoch == 2 and history[-1].weight == 100.0
    assert history[-1].raw == pytest.approx(0.11) and history[-1].weighted == pytest.approx(11.0)
    with pytest.raises(ValueError, match="history_size must be an int >= 1, got 0"):
        LossManager(history_size=0)


def test_print_losses_and_weights(capsys) -> None:
    lm = manager()
    lm.register_loss("G_S", mean_diff, schedule=Schedule(0, 2, 0.0, 1.0), tags=["G"])
    lm.compute_loss_xy("G_L1", *value(0.12), epoch=1)
    lm.compute_loss_xy("G_GAN", *value(0.7), epoch=1)
    line = lm.print_losses(epoch=1, iter=30, query=["G"])
    assert line == "[epoch 1 | iter 30] G_GAN 0.7 | G_L1 12 (= 0.12 x 100)"
    text = lm.print_weights(epoch=1)
    assert (
        "G_L1 [G]: weight 100" in text
        and "G_S [G]: schedule" in text
        and "-> 0.5 at epoch 1" in text
    )
    assert capsys.readouterr().out == line + "\n" + text + "\n"


# -- loss log -------------------------------------------------------------------------


def test_no_log_without_an_experiment_dir_or_when_disabled(tmp_path: Path) -> None:
    lm = manager(None)
    lm.compute_loss_xy("G_GAN", *value(1.0), 0)
    assert lm.flush_log() is None
    off = manager(tmp_path, log_losses=False)
    off.compute_loss_xy("G_GAN", *value(1.0), 0)
    off.flush_log()
    assert list(tmp_path.iterdir()) == []


def test_log_holds_raw_values_and_the_scheduled_weights_actually_applied(tmp_path: Path) -> None:
    lm = LossManager(tmp_path)
    lm.register_loss(
        "G_L1", mean_diff, weight=100.0, schedule=Schedule(0, 2, 100.0, 50.0), tags=["G"]
    )
    for epoch in range(3):
        lm.compute_loss_xy("G_L1", *value(0.5), epoch)
        lm.end_epoch(epoch)
    log = read_loss_log(tmp_path)["losses"]["G_L1"]
    assert log["epoch"] == [0, 1, 2] and log["step"] == [0, 1, 2]
    assert log["raw"] == [0.5] * 3 and log["weight"] == [100.0, 75.0, 50.0]
    assert log["weighted"] == [50.0, 37.5, 25.0]
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    assert index["losses"]["G_L1"]["schedule"]["target_value"] == 50.0


def test_each_flush_writes_only_new_records(tmp_path: Path) -> None:
    lm = manager(tmp_path)
    sizes = []
    for epoch in range(4):
        for _ in range(10):
            lm.compute_loss_xy("G_GAN", *value(1.0), epoch)
        lm.flush_log()
        newest = segments(tmp_path)[-1]
        assert json.loads(newest.read_text())["losses"]["G_GAN"]["epoch"] == [epoch] * 10
        sizes.append(newest.stat().st_size + (tmp_path / INDEX_NAME).stat().st_size)
    assert len(segments(tmp_path)) == 4
    assert max(sizes) - min(sizes) < 16  # bytes written per flush do not grow with training
    assert lm.flush_log() is None and len(segments(tmp_path)) == 4  # nothing new: nothing written


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path, monkeypatch) -> None:
    lm = manager(tmp_path)
    lm.compute_loss_xy("G_GAN", *value(1.0), 0)
    lm.flush_log()
    before = (tmp_path / INDEX_NAME).read_bytes()

    def crash(src, dst):
        raise OSError("disk full")

    lm.compute_loss_xy("G_GAN", *value(2.0), 0)
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        lm.flush_log()
    monkeypatch.undo()
    assert (tmp_path / INDEX_NAME).read_bytes() == before  # old file intact
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == [] and len(segments(tmp_path)) == 1
    lm.flush_log()  # the records of the failed flush were kept and are written now
    assert read_loss_log(tmp_path)["losses"]["G_GAN"]["raw"] == [1.0, 2.0]


def test_resuming_appends_to_the_log_and_continues_steps(tmp_path: Path) -> None:
    first = manager(tmp_path)
    for _ in range(3):
        first.compute_loss_xy("G_GAN", *value(1.0), epoch=0)
    first.flush_log()
    old = {p: p.read_bytes() for p in segments(tmp_path)}

    second = manager(tmp_path)
    second.compute_loss_xy("G_GAN", *value(2.0), epoch=1)
    second.flush_log()
    assert all(p.read_bytes() == data for p, data in old.items())  # never overwritten
    log = read_loss_log(tmp_path)
    assert log["losses"]["G_GAN"]["step"] == [0, 1, 2, 3]
    assert log["losses"]["G_GAN"]["raw"] == [1.0, 1.0, 1.0, 2.0]
    assert [run["first_segment"] for run in log["runs"]] == [1, 2]


def test_non_finite_values_are_logged_as_null(tmp_path: Path) -> None:
    lm = manager(tmp_path)
    lm.compute_loss_xy("G_GAN", *value(math.nan), 0)
    lm.flush_log()
    assert read_loss_log(tmp_path)["losses"]["G_GAN"]["raw"] == [None]
    assert (
        lm.get_loss_values()["G_GAN"] != lm.get_loss_values()["G_GAN"]
    )  # NaN stays visible in memory


def test_a_foreign_index_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / INDEX_NAME).write_text('{"something": "else"}')
    with pytest.raises(ValueError, match="is not a nectargan.loss_log index"):
        LossManager(tmp_path)
    (tmp_path / INDEX_NAME).write_text("{broken")
    with pytest.raises(ValueError, match="unreadable loss log index"):
        LossManager(tmp_path)


def test_works_with_real_loss_functions(tmp_path: Path) -> None:
    lm = LossManager(tmp_path)
    lm.register_loss("G_L1", l1_loss, weight=100.0, tags=["G"])
    x, y = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    assert lm.compute_loss_xy("G_L1", x, y, 0).item() == pytest.approx(
        100 * (x - y).abs().mean().item(), rel=1e-6
    )
    assert lm.end_epoch(0) == tmp_path / SEGMENT_DIR / "000001.json"
