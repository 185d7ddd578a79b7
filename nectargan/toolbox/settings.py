"""The Toolbox's own settings (Settings page), kept in ``<state dir>/settings.json``.

Why a file: the output roots, queue concurrency and default device outlive a
restart of the Toolbox, like the queue does. Each value is checked when set
(one line naming the bad value and what is expected), so a hand-edited file
with a bad value falls back to the default for that value only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nectargan.errors import UserError
from nectargan.toolbox.paths import confine
from nectargan.utils.atomic import atomic_write_text

SETTINGS_FILE = "settings.json"
DEVICE_CHOICES = ("auto", "cpu", "cuda")
MAX_CONCURRENCY = 16
DEFAULT_VISDOM_PORT = 8097


class SettingsError(UserError):
    """A setting out of range; the message names it, the value and what is expected."""


@dataclass
class ToolboxSettings:
    output_roots: list[str] = field(default_factory=list)
    visdom_port: int = DEFAULT_VISDOM_PORT
    default_device: str = "auto"
    concurrency: int = 1


def check_device(value: Any) -> str:
    text = str(value).strip()
    base, _, index = text.partition(":")
    if base in DEVICE_CHOICES and (not index or (base == "cuda" and index.isdigit())):
        return text
    raise SettingsError(f"default_device: expected auto, cpu, cuda or cuda:N, got {value!r}")


def check_concurrency(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if str(value).strip().lstrip("+").isdigit() and 1 <= number <= MAX_CONCURRENCY:
        return number
    raise SettingsError(f"concurrency: expected a whole number 1-{MAX_CONCURRENCY}, got {value!r}")


def check_port(value: Any) -> int:
    if str(value).strip().isdigit() and 1 <= int(value) <= 65535:
        return int(value)
    raise SettingsError(f"visdom_port: expected a port number 1-65535, got {value!r}")


class SettingsStore:
    """Thread-safe read/modify/write of the settings file; roots confine the output roots."""

    def __init__(self, state_dir: Path, roots: Sequence[Path]) -> None:
        self.path = state_dir / SETTINGS_FILE
        self.roots = list(roots)
        self._lock = threading.Lock()
        self._settings = self._load()

    def get(self) -> ToolboxSettings:
        with self._lock:
            return ToolboxSettings(**asdict(self._settings))

    def output_roots(self) -> list[Path]:
        """Where experiments are looked for; the first root's ``output`` folder by default."""
        chosen = self.get().output_roots
        return [Path(p) for p in chosen] if chosen else [self.roots[0] / "output"]

    def update(self, values: Mapping[str, Any]) -> ToolboxSettings:
        """Check every given value, then store them all (or none, raising the first problem)."""
        with self._lock:
            current = asdict(self._settings)
            for key, value in values.items():
                current[key] = self._checked(key, value)
            self._settings = ToolboxSettings(**current)
            atomic_write_text(self.path, json.dumps(asdict(self._settings), indent=1) + "\n")
            return ToolboxSettings(**current)

    def _checked(self, key: str, value: Any) -> Any:
        if key == "output_roots":
            items = value.split("\n") if isinstance(value, str) else list(value)
            paths = [str(confine(v.strip(), self.roots)) for v in items if str(v).strip()]
            if not paths:
                raise SettingsError("output_roots: expected at least one folder inside a root")
            return paths
        checkers = {
            "visdom_port": check_port,
            "default_device": check_device,
            "concurrency": check_concurrency,
        }
        if key not in checkers:
            raise SettingsError(f"{key}: unknown setting (expected one of {sorted(checkers)})")
        return checkers[key](value)

    def _load(self) -> ToolboxSettings:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ToolboxSettings()
        settings = ToolboxSettings()
        if not isinstance(raw, dict):
            return settings
        for key, value in raw.items():
            try:
                setattr(settings, key, self._checked(key, value))
            except UserError:
                continue  # a bad or unknown value keeps its default
        return settings
