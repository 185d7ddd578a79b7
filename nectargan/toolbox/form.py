"""A posted New-run form -> a config validated by the same schema as every config, and back.

The form posts text; each field's text is turned into the JSON value its
schema key takes where it reads as one (``"8"`` -> 8, ``""`` -> null where
null is allowed), and is otherwise handed to the schema as typed, so the
message beside a field is always the schema's own (``expected >= 0, got -1``,
``expected a finite number, got nan``). Posted names that are no field go to
the schema too, which refuses them as unknown keys: nothing is dropped quietly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from nectargan.config.config import Config, ConfigError, default_config_dict, validate
from nectargan.toolbox.form_fields import FormField, fields_by_key

FORM_LEVEL = ""  # the errors key of problems that belong to no one field
TRUE_TEXTS = frozenset({"true", "on", "1"})
FALSE_TEXTS = frozenset({"false", "off", "0"})


@dataclass
class FormResult:
    """A checked form: the config when valid, what to show again, and each field's errors."""

    config: Config | None
    texts: dict[str, str] = field(default_factory=dict)  # posted name -> text
    errors: dict[str, list[str]] = field(default_factory=dict)  # field key -> messages

    @property
    def valid(self) -> bool:
        return self.config is not None and not self.errors

    def add_error(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)
        self.config = None


# -- config -> texts ---------------------------------------------------------------------------


def _value_at(data: Mapping[str, Any], key: str, default: Any) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def choice_text(choice: Any) -> str:
    """How a choice is posted: strings as they are, others as JSON (true, 3)."""
    return choice if isinstance(choice, str) else json.dumps(choice)


def _number_text(value: Any) -> str:
    return "" if value is None else str(value)


def field_texts(f: FormField, value: Any) -> dict[str, str]:
    """The text of each input of ``f`` holding ``value``."""
    if f.kind == "range":
        ends = value if isinstance(value, list) and len(value) == 2 else ["", ""]
        return {name: _number_text(v) for name, v in zip(f.part_names(), ends, strict=True)}
    if f.kind == "select":
        text = choice_text(value)
    elif f.kind == "checkbox":
        text = "true" if value is True else "false"
    elif f.kind == "list":
        text = "" if value is None else ", ".join(map(str, value))
    elif f.kind == "json":
        text = json.dumps(value)
    else:
        text = _number_text(value)
    return {f.key: text}


def form_texts(data: Mapping[str, Any]) -> dict[str, str]:
    """Every input's text for a config dict (keys it leaves out show their defaults)."""
    texts: dict[str, str] = {}
    for f in fields_by_key().values():
        texts.update(field_texts(f, _value_at(data, f.key, f.default)))
    return texts


@lru_cache(maxsize=1)
def default_texts() -> dict[str, str]:
    return form_texts(default_config_dict())


def changed_fields(texts: Mapping[str, str]) -> set[str]:
    """Keys of the fields whose text differs from the default's (the 'only changes' view)."""
    defaults = default_texts()
    return {
        f.key
        for f in fields_by_key().values()
        if any(texts.get(n, defaults[n]) != defaults[n] for n in f.part_names())
    }


def differences(data: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted key -> value of every key of ``data`` whose value is not the default."""
    return {
        f.key: value
        for f in fields_by_key().values()
        if (value := _value_at(data, f.key, f.default)) != f.default
    }


# -- texts -> config ---------------------------------------------------------------------------


def _number(text: str, kind: str) -> Any:
    """``text`` as an int (or, failing that, a float the schema will refuse) or a float;
    text that is no number at all is returned as is, for the schema to name."""
    stripped = text.strip()
    for convert in (int, float) if kind == "int" else (float,):
        try:
            return convert(stripped)
        except ValueError:
            pass
    return text


def _scalar(f: FormField, text: str) -> Any:
    if f.nullable and not text.strip():
        return None
    if f.kind == "select":
        return next((c for c in f.choices if choice_text(c) == text), text)
    if f.kind == "checkbox":
        low = text.strip().lower()
        return True if low in TRUE_TEXTS else False if low in FALSE_TEXTS else text
    if f.kind in ("int", "float"):
        return _number(text, f.kind)
    if f.kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def field_value(f: FormField, texts: Mapping[str, str]) -> Any:
    """The JSON value of ``f`` from its posted texts (ill-typed text passes through as text)."""
    if f.kind == "range":
        kind = "int" if f.item == "int" else "float"
        ends = [_number(texts.get(name, ""), kind) for name in f.part_names()]
        return ends
    text = texts.get(f.key, "")
    if f.kind == "json":
        return json.loads(text) if text.strip() else f.default
    return _scalar(f, text)


def _field_of(key: str) -> tuple[str, str]:
    """(the field a problem's key belongs to, what is left of the key below it)."""
    fields = fields_by_key()
    if key in fields:
        return key, ""
    for name in sorted(fields, key=len, reverse=True):
        if key.startswith((name + ".", name + "[")):
            return name, key[len(name) :].lstrip(".")
    return FORM_LEVEL, key


def errors_by_field(problems: Iterable[str]) -> dict[str, list[str]]:
    """Each schema problem line (``key: message``) filed under the field it is about."""
    errors: dict[str, list[str]] = {}
    for line in problems:
        key, sep, message = line.partition(": ")
        owner, rest = _field_of(key) if sep else (FORM_LEVEL, "")
        shown = line if owner == FORM_LEVEL else f"{rest}: {message}" if rest else message
        errors.setdefault(owner, []).append(shown)
    return errors


def _last_values(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """One text per name, the last posted (a checkbox's hidden 'false' comes before it)."""
    texts: dict[str, str] = {}
    for name, text in items:
        if name and not name.startswith("_"):  # '_action', '_xsrf': the page's own
            texts[name] = text
    return texts


def read_form(items: Iterable[tuple[str, str]]) -> FormResult:
    """A posted form checked by the schema; every problem is filed under its field."""
    texts = _last_values(items)
    fields = fields_by_key()
    known = {name for f in fields.values() for name in f.part_names()}
    overrides: dict[str, Any] = {}
    parse_errors: dict[str, list[str]] = {}
    for f in fields.values():
        if not any(name in texts for name in f.part_names()):
            continue
        try:
            overrides[f.key] = field_value(f, texts)
        except json.JSONDecodeError as exc:
            parse_errors[f.key] = [f"expected JSON ({f.expects}): {exc.msg} at column {exc.colno}"]
    overrides.update({name: texts[name] for name in texts if name not in known})
    result = FormResult(None, texts, parse_errors)
    try:
        config = Config(default_config_dict()).with_overrides(overrides, source="form")
    except ConfigError as exc:
        for key, messages in errors_by_field(exc.problems).items():
            for message in messages:
                result.add_error(key, message)
        return result
    if not parse_errors:
        result.config = config
    return result


def check_config_dict(data: Any, source: str = "config") -> FormResult:
    """A config posted whole (the JSON API): the same schema, the same per-field errors."""
    if not isinstance(data, Mapping):
        return FormResult(None, {}, {FORM_LEVEL: [f"top level: expected object, got {data!r}"]})
    try:
        config = validate(data, source)
    except ConfigError as exc:
        return FormResult(None, {}, errors_by_field(exc.problems))
    return FormResult(Config.from_model(config), form_texts(config.to_dict()))
