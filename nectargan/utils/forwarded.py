"""A read-only attribute that reads another object's: ``global_step = Forwarded[int]("progress.global_step")``.

For a facade that keeps public names (the config's sections, the trainer's counters) while
the value lives in one place: one line each instead of a five-line property, still typed for
editors, still refusing assignment as a property does.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class Forwarded(Generic[T]):
    """``obj.<name>`` reads ``obj.<path>`` (dots allowed); setting it raises AttributeError."""

    def __init__(self, path: str, doc: str | None = None) -> None:
        self.path = path
        self._read = attrgetter(path)
        self.__doc__ = doc or f"Read-only: ``{path}``."

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Forwarded[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else self._read(obj)

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(f"{self.name} is read-only (it is {self.path})")
