"""pydantic's validation errors as our one-line problems: ``dotted.key: expected X, got Y``.

pydantic's own text ("Input should be a valid integer") names neither the
value given nor, for unions, one clear expectation; here each error becomes
one line naming the key, what it accepts (read from the schema) and the
value as given, with one line per key even when a union failed several ways.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from nectargan.errors import ConfigUserError

_TYPE_NAMES = {int: "integer", float: "number", bool: "boolean", str: "string", type(None): "null"}
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "less_than_equal": ("<=", "le"),
    "greater_than": (">", "gt"),
    "less_than": ("<", "lt"),
}


class ConfigError(ConfigUserError):
    """Every problem found in a config, one line per key path."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        super().__init__(
            f"invalid {source} ({len(problems)} problem(s)):\n  " + "\n  ".join(problems)
        )


def describe_type(annotation: Any) -> str:
    """What a value of ``annotation`` looks like, in words ('integer or null', 'object')."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return describe_type(get_args(annotation)[0])
    if origin is Literal:
        return f"one of {list(get_args(annotation))}"
    if origin in (Union, types.UnionType):
        return " or ".join(describe_type(a) for a in get_args(annotation))
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        return f"list of {describe_type(item)}s" if item in _TYPE_NAMES else "list"
    if origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return "object"
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _number(bound: Any) -> str:
    """A bound as written in the schema would read: 0, not 0.0 (pydantic hands floats)."""
    if isinstance(bound, float) and bound.is_integer():
        return str(int(bound))
    return repr(bound)


def _got(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return f"object {value!r}"
    return f"{type(value).__name__} {value!r}"


def _unwrap_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (to walk into it); anything else as is."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    if get_origin(annotation) is Annotated:
        return get_args(annotation)[0]
    return annotation


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], Any, Any]:
    """Follow ``loc`` through the schema: (key path, the annotation there, what is left).

    The leftover is a key the model does not have (unknown key) or a union
    member's tag, which only says which alternative pydantic tried.
    """
    path: list[str] = []
    annotation: Any = model
    for i, part in enumerate(loc):
        annotation = _unwrap_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if part not in annotation.model_fields:
                return path, annotation, loc[i:]
            path.append(str(part))
            annotation = annotation.model_fields[part].annotation
        elif get_origin(annotation) is dict:
            path.append(str(part))
            if loc[i + 1 : i + 2] == ("[key]",):  # the key itself is wrong, not its value
                return path, annotation, ("[key]",)
            annotation = get_args(annotation)[1]
        elif get_origin(annotation) is list and isinstance(part, int):
            path[-1] += f"[{part}]"
            annotation = get_args(annotation)[0]
        else:
            return path, annotation, loc[i:]
    return path, annotation, ()


def _message(error: Any, annotation: Any, leftover: tuple[Any, ...]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "extra_forbidden":
        valid = ", ".join(sorted(annotation.model_fields))
        return f"unknown key (valid here: {valid})"
    if kind == "missing":
        return "missing (required)"
    if kind == "nectargan":
        return error["msg"]
    if leftover == ("[key]",):
        keys = get_args(get_args(annotation)[0])
        return f"unknown key (valid here: {', '.join(map(str, keys))})"
    if kind == "literal_error":
        return f"expected {describe_type(annotation)}, got {value!r}"
    if kind in _BOUNDS:
        symbol, name = _BOUNDS[kind]
        return f"expected {symbol} {_number(ctx[name])}, got {value!r}"
    if kind == "finite_number":
        return f"expected a finite number, got {value!r}"
    if kind == "too_short" and isinstance(value, list):
        return f"expected a non-empty list, got {value!r}"
    if kind == "string_too_short":
        return f"expected a non-empty string, got {value!r}"
    return f"expected {describe_type(annotation)}, got {_got(value)}"


def problems_from(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """One line per key (first error wins when a union failed in several ways)."""
    problems: list[str] = []
    seen: set[str] = set()
    for error in exc.errors(include_url=False):
        if error["type"] == "nectargan_cross":
            problems.extend(error["ctx"]["problems"])
            continue
        path, annotation, leftover = _walk(model, tuple(error["loc"]))
        if error["type"] == "extra_forbidden" and leftover:
            path = [*path, str(leftover[0])]
        key = ".".join(path) or "top level"
        if any(key == s or key.startswith(s + ".") for s in seen):
            continue  # already reported at this key or the object holding it
        seen.add(key)
        problems.append(f"{key}: {_message(error, annotation, leftover)}")
    return problems
