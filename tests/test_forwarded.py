"""Forwarded: a public name that reads a value kept elsewhere, read-only like a property."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from nectargan.utils.forwarded import Forwarded


@dataclass
class _Counters:
    step: int = 0


@dataclass
class _Facade:
    counters: _Counters = field(default_factory=_Counters)
    step = Forwarded[int]("counters.step", "Steps so far.")


def test_reads_the_current_value_through_a_dotted_path():
    facade = _Facade()
    facade.counters.step = 5
    assert facade.step == 5
    facade.counters = _Counters(step=9)
    assert facade.step == 9


def test_assignment_is_refused_naming_where_the_value_lives():
    with pytest.raises(AttributeError, match=r"step is read-only \(it is counters.step\)"):
        _Facade().step = 3


def test_on_the_class_it_is_the_descriptor_with_its_doc():
    assert isinstance(_Facade.step, Forwarded) and _Facade.step.__doc__ == "Steps so far."
