"""The base of every config section: a frozen, strict pydantic model that also reads as a Mapping.

Strict so that ``true`` is never taken for ``1`` nor ``"8"`` for ``8``;
``extra="forbid"`` so a typo is an error, not a silently ignored key;
``allow_inf_nan=False`` so NaN/Infinity never reach a learning rate. The
Mapping face (``section["key"]``, ``.get``, ``.items()``, ``to_dict()``)
keeps code that takes plain dicts (data loaders, loss specs) working.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


class Section(BaseModel):
    """One config section: attribute access is typed, item access mirrors it."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        allow_inf_nan=False,
        revalidate_instances="never",
    )

    @field_validator("*", mode="before")
    @classmethod
    def _exact_choice(cls, value: Any, info: ValidationInfo) -> Any:
        """Choices match by type too: pydantic alone takes ``true`` for ``1`` and ``1`` for ``true``."""
        annotation = cls.model_fields[info.field_name or ""].annotation
        if get_origin(annotation) is not Literal:
            return value
        choices = get_args(annotation)
        if not any(type(value) is type(c) and value == c for c in choices):
            raise PydanticCustomError(
                "literal_error", "expected one of {choices}", {"choices": list(choices)}
            )
        return value

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # keys, as a Mapping does
        return iter(type(self).model_fields)

    def __len__(self) -> int:
        return len(type(self).model_fields)

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields

    def keys(self) -> list[str]:
        return list(type(self).model_fields)

    def values(self) -> list[Any]:
        return [getattr(self, k) for k in type(self).model_fields]

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in type(self).model_fields]

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in type(self).model_fields else default

    def to_dict(self) -> dict[str, Any]:
        """A deep, plain-JSON copy (what ``default.json`` and ``config.json`` hold)."""
        return self.model_dump(mode="python")


Mapping.register(Section)
