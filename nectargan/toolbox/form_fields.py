"""The New-run form's fields, read from the config schema (never written out by hand).

Every section of :class:`~nectargan.config.schema.NectarConfig` becomes a
group, every key a field carrying the schema's description, default, bounds
and choices, so a key added to the schema appears in the form with no change
here. How a posted form turns back into a config is in ``form.py``.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from nectargan.config.problems import describe_type
from nectargan.config.schema import NectarConfig

# How a value is edited: a <select>, a checkbox, one number or text box, two number boxes
# (a [min, max] range), a comma-separated list, or a JSON text area (per-loss schedules).
Kind = Literal["select", "checkbox", "int", "float", "text", "range", "list", "json"]
RANGE_ENDS = ("min", "max")
_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


@dataclass(frozen=True)
class FormField:
    """One config key as the form shows it."""

    key: str  # dotted path: train.generator.features
    kind: Kind
    help: str
    default: Any
    expects: str  # the schema's type in words: 'integer or null'
    nullable: bool = False
    choices: tuple[Any, ...] = ()
    minimum: float | None = None  # inclusive bounds, for the browser's number box
    maximum: float | None = None
    bounds: str = ""  # every bound in words: '>= 0, < 1'
    item: Literal["int", "float"] = "float"  # a range's numbers

    @property
    def name(self) -> str:
        return self.key.rsplit(".", 1)[-1]

    def part_names(self) -> tuple[str, ...]:
        """The posted names of this field: one, or ``key[min]`` and ``key[max]`` for a range."""
        if self.kind == "range":
            return tuple(f"{self.key}[{end}]" for end in RANGE_ENDS)
        return (self.key,)


@dataclass(frozen=True)
class FormGroup:
    """One config section: its own keys (subsections are groups of their own)."""

    key: str  # dotted path of the section: dataloader.augment.hflip
    help: str
    fields: tuple[FormField, ...]

    @property
    def depth(self) -> int:
        return self.key.count(".")


def _members(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without ``| None``, whether null is allowed)."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(members) < len(get_args(annotation))
        if len(members) == 1:
            return members[0], nullable
    return annotation, False


def _section(annotation: Any) -> type[BaseModel] | None:
    inner, _ = _members(annotation)
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return inner
    return None


def _kind(inner: Any) -> tuple[Kind, Literal["int", "float"]]:
    if get_origin(inner) is Literal:
        return "select", "float"
    if get_origin(inner) is list:
        (item,) = get_args(inner)
        if item in (int, float):
            return "range", "int" if item is int else "float"
        return "list", "float"
    if get_origin(inner) is dict:
        return "json", "float"
    simple: dict[Any, Kind] = {bool: "checkbox", int: "int", float: "float", str: "text"}
    return simple.get(inner, "json"), "float"


def _number(value: float) -> str:
    """A bound as the schema writes it: 0, not 0.0."""
    return str(int(value)) if float(value).is_integer() else json.dumps(value)


def _bounds(info: FieldInfo) -> tuple[float | None, float | None, str]:
    minimum = maximum = None
    words = []
    for meta in info.metadata:
        for attr, symbol in _BOUNDS:
            value = getattr(meta, attr, None)
            if value is None:
                continue
            words.append(f"{symbol} {_number(value)}")
            if attr == "ge":
                minimum = value
            elif attr == "le":
                maximum = value
    return minimum, maximum, ", ".join(words)


def make_field(key: str, info: FieldInfo) -> FormField:
    """The form field of one schema key."""
    inner, nullable = _members(info.annotation)
    kind, item = _kind(inner)
    minimum, maximum, bounds = _bounds(info)
    return FormField(
        key=key,
        kind=kind,
        help=info.description or "",
        default=info.get_default(call_default_factory=True),
        expects=describe_type(info.annotation),
        nullable=nullable,
        choices=get_args(inner) if kind == "select" else (),
        minimum=minimum,
        maximum=maximum,
        bounds=bounds,
        item=item,
    )


def _section_help(model: type[BaseModel], info: FieldInfo | None) -> str:
    """The holding key's description, then the section's own docstring when it adds to it."""
    parts = [info.description or "" if info else "", (model.__doc__ or "").strip()]
    return " ".join(dict.fromkeys(p for p in parts if p))


def _walk(model: type[BaseModel], prefix: str, info: FieldInfo | None, out: list) -> None:
    fields, sections = [], []
    for name, child in model.model_fields.items():
        key = f"{prefix}.{name}" if prefix else name
        sub = _section(child.annotation)
        if sub is not None:
            sections.append((sub, key, child))
        else:
            fields.append(make_field(key, child))
    if prefix:
        out.append(FormGroup(prefix, _section_help(model, info), tuple(fields)))
    for sub, key, child in sections:
        _walk(sub, key, child, out)


@lru_cache(maxsize=1)
def form_groups() -> tuple[FormGroup, ...]:
    """Every section of the config, in the schema's order, each with its keys."""
    out: list[FormGroup] = []
    _walk(NectarConfig, "", None, out)
    return tuple(out)


@lru_cache(maxsize=1)
def fields_by_key() -> dict[str, FormField]:
    return {f.key: f for group in form_groups() for f in group.fields}
