"""Schedule shapes and torch learning-rate scheduling."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nectargan.scheduling import LRScheduler, Schedule, make_pix2pix_lr_scheduler

# -- Schedule -------------------------------------------------------------------------


def test_increasing_schedule_goes_up() -> None:
    s = Schedule(0, 10, 1e-4, 2e-4)
    values = [s(e) for e in range(11)]
    assert values[0] == 1e-4 and values[-1] == 2e-4
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    assert s(5) == pytest.approx(1.5e-4)


def test_decreasing_schedule_goes_down() -> None:
    s = Schedule(2, 6, 2e-4, 0.0)
    assert [s(e) for e in (0, 2, 4, 6, 9)] == pytest.approx([2e-4, 2e-4, 1e-4, 0.0, 0.0])


def test_exponential_keeps_a_constant_ratio() -> None:
    s = Schedule(0, 4, 1.0, 16.0, "exponential")
    assert [s(e) for e in range(5)] == pytest.approx([1, 2, 4, 8, 16])
    down = Schedule(0, 2, 1e-2, 1e-4, "exponential")
    assert down(1) == pytest.approx(1e-3)
    negative = Schedule(0, 2, -1.0, -4.0, "exponential")
    assert negative(1) == pytest.approx(-2.0)


def test_user_callable_is_an_easing_curve() -> None:
    def ease_in(t: float) -> float:
        return t * t

    s = Schedule(10, 20, 0.0, 100.0, ease_in)
    assert s(15) == pytest.approx(25.0)
    assert s(10) == 0.0 and s(20) == 100.0
    assert s.to_dict()["kind"] == "ease_in"


def test_zero_width_window_is_a_step() -> None:
    s = Schedule(5, 5, 1.0, 3.0)
    assert (s(4.999), s(5), s(6)) == (1.0, 3.0, 3.0)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((5, 1, 0.0, 1.0), "end_epoch"),
        ((0, 1, 0.0, 1.0, "cosine"), "'cosine'"),
        ((0, 1, 1.0, 0.0, "exponential"), "same sign"),
        ((0, 1, -1.0, 1.0, "exponential"), "same sign"),
        ((0, 1, math.nan, 1.0), "initial_value"),
        ((0, math.inf, 0.0, 1.0), "end_epoch"),
    ],
)
def test_bad_schedules_name_the_problem(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Schedule(*args)


def test_non_numbers_are_refused() -> None:
    with pytest.raises(TypeError, match="initial_value"):
        Schedule(0, 1, "0.1", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="start_epoch"):
        Schedule(True, 1, 0.0, 1.0)
    with pytest.raises(ValueError, match="returned nan"):
        Schedule(0, 2, 0.0, 1.0, lambda t: math.nan)(1)


def test_dict_round_trip_and_errors() -> None:
    s = Schedule(1, 3, 0.5, 2.0, "exponential")
    assert Schedule.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="missing keys \\['target_value'\\]"):
        Schedule.from_dict({"start_epoch": 0, "end_epoch": 1, "initial_value": 0})
    with pytest.raises(ValueError, match="unknown keys \\['speed'\\]"):
        Schedule.from_dict({**s.to_dict(), "speed": 2})


# -- properties -----------------------------------------------------------------------

values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-8, max_value=1e6)
epochs = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    start = draw(st.floats(min_value=-1000, max_value=1000))
    end = start + draw(st.floats(min_value=0, max_value=1000))
    if draw(st.booleans()):
        return Schedule(start, end, draw(values), draw(values), "linear")
    sign = draw(st.sampled_from([1.0, -1.0]))
    return Schedule(start, end, sign * draw(positive), sign * draw(positive), "exponential")


@settings(max_examples=300, deadline=None)
@given(schedules(), epochs, epochs)
def test_property_monotone_in_the_direction_of_the_target(
    s: Schedule, e1: float, e2: float
) -> None:
    lo, hi = sorted((e1, e2))
    if s.target_value >= s.initial_value:
        assert s(lo) <= s(hi)
    else:
        assert s(lo) >= s(hi)


@settings(max_examples=300, deadline=None)
@given(schedules())
def test_property_hits_both_ends_exactly(s: Schedule) -> None:
    assert s(s.end_epoch) == s.target_value
    if s.end_epoch > s.start_epoch:
        assert s(s.start_epoch) == s.initial_value


@settings(max_examples=300, deadline=None)
@given(schedules(), st.floats(min_value=0, max_value=1e6), epochs)
def test_property_clamps_outside_and_stays_between_ends_inside(
    s: Schedule, beyond: float, e: float
) -> None:
    assert s(s.end_epoch + beyond) == s.target_value
    before = s.start_epoch - beyond
    if before < s.start_epoch:
        assert s(before) == s.initial_value
    lo, hi = sorted((s.initial_value, s.target_value))
    assert lo <= s(e) <= hi


# -- learning rates -------------------------------------------------------------------


def _optimizer(lr: float = 2e-4, groups: int = 1) -> torch.optim.Optimizer:
    params = [{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)]
    return torch.optim.Adam(params, lr=lr)


def _reference_pix2pix(base: float, epochs: int, decay: int, n: int) -> float:
    """The rule from the pix2pix reference code, for n completed epochs."""
    return base * (1.0 - max(0, n + 1 - epochs) / float(decay + 1))


def test_pix2pix_lr_is_constant_then_decays_linearly() -> None:
    opt = _optimizer(2e-4)
    sched = make_pix2pix_lr_scheduler(opt, epochs=3, epochs_decay=4)
    seen = [opt.param_groups[0]["lr"]]
    for _ in range(7):
        sched.step()
        seen.append(opt.param_groups[0]["lr"])
    expected = [_reference_pix2pix(2e-4, 3, 4, n) for n in range(8)]
    assert seen == pytest.approx(expected)
    assert seen[:3] == [2e-4] * 3 and seen[-1] == 0.0
    assert all(lr > 0 for lr in seen[:7])  # every training epoch learns something


def test_pix2pix_lr_decays_to_a_nonzero_target() -> None:
    opt = _optimizer(1e-3)
    sched = make_pix2pix_lr_scheduler(opt, epochs=1, epochs_decay=1, target=1e-4, last_epoch=2)
    assert sched.get_last_lr() == [1e-4]


def test_resume_continues_the_schedule() -> None:
    straight = make_pix2pix_lr_scheduler(_optimizer(), epochs=2, epochs_decay=5)
    for _ in range(4):
        straight.step()
    resumed = make_pix2pix_lr_scheduler(_optimizer(), epochs=2, epochs_decay=5, last_epoch=4)
    assert resumed.get_last_lr() == straight.get_last_lr()
    straight.step()
    resumed.step()
    assert resumed.get_last_lr() == straight.get_last_lr()


def test_state_dict_round_trip_with_a_restored_optimizer() -> None:
    opt = _optimizer(2e-4)
    sched = make_pix2pix_lr_scheduler(opt, epochs=1, epochs_decay=3)
    for _ in range(3):
        sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    decayed = sched.get_last_lr()

    opt2 = _optimizer(2e-4)
    opt2.load_state_dict(opt_state)  # lr is now the decayed one; initial_lr survives
    sched2 = make_pix2pix_lr_scheduler(opt2, epochs=1, epochs_decay=3)
    sched2.load_state_dict(sched_state)
    assert sched2.get_last_lr() == decayed
    assert sched2.lr_at(0) == [2e-4]


def test_custom_schedules_per_group() -> None:
    opt = _optimizer(1.0, groups=2)
    sched = LRScheduler(opt, [Schedule(0, 2, 1e-4, 2e-4), lambda n: 0.1 * (n + 1)])
    assert sched.get_last_lr() == pytest.approx([1e-4, 0.1])
    sched.step()
    assert sched.get_last_lr() == pytest.approx([1.5e-4, 0.2])


def test_lr_scheduler_rejects_bad_input() -> None:
    opt = _optimizer(groups=2)
    with pytest.raises(ValueError, match="one per param group \\(2\\)"):
        LRScheduler(opt, [lambda n: 0.1])
    with pytest.raises(ValueError, match="last_epoch must be an int >= 0"):
        LRScheduler(opt, lambda n: 0.1, last_epoch=-1)
    with pytest.raises(ValueError, match="must be >= 0, got -0.1"):
        LRScheduler(opt, lambda n: -0.1)
    with pytest.raises(ValueError, match="epochs_decay must be an int >= 0, got 2.5"):
        make_pix2pix_lr_scheduler(opt, 3, 2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        LRScheduler("adam", lambda n: 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'last_epoch'"):
        LRScheduler(opt, lambda n: 0.1).load_state_dict({})
