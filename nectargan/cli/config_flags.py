"""The flags several commands share: ``--config``, ``--set``, the named shortcuts and ``--epoch``.

``train``, ``test``, ``demo``, ``config show`` and ``data preview`` build their config
the same way (a file or packaged name, then flag overrides; resuming, the checkpoint's
own config), so that reading lives here once.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from nectargan.config import Config
from nectargan.config.config import check_output_directory
from nectargan.errors import CheckpointUserError, ConfigUserError
from nectargan.runs.epochs import parse_epoch

PACKAGED_CONFIGS = ("demo",)


def packaged_config_path(name: str) -> Path:
    return Path(str(resources.files("nectargan.config").joinpath(f"{name}.json")))


def _config_source(value: str | None) -> Any:
    """A path, or the name of a packaged config (``demo``) when no such file exists."""
    if value is None:
        return None
    if not Path(value).exists() and value in PACKAGED_CONFIGS:
        return packaged_config_path(value)
    return value


def _parse_set(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it parses (numbers, true, null), else text."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigUserError(
            f"--set expects KEY=VALUE (e.g. train.generator.features=16), got {item!r}"
        )
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


FLAG_KEYS = {
    "epochs": "train.epochs",
    "epochs_decay": "train.epochs_decay",
    "dataroot": "dataloader.dataroot",
    "output": "common.output_directory",
    "name": "common.experiment_name",
    "batch_size": "dataloader.batch_size",
    "device": "common.device",
    "precision": "train.mixed_precision",
    "visdom": "visualizer.visdom.enable",
    "port": "visualizer.visdom.port",
    "env": "visualizer.visdom.env_name",
}


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Dotted config overrides from the flags that were given (None = not given)."""
    out = {key: getattr(args, flag, None) for flag, key in FLAG_KEYS.items()}
    out = {key: value for key, value in out.items() if value is not None}
    if getattr(args, "auto_resume", False):
        out["train.resume.auto"] = True
    if getattr(args, "resume", None):
        out["train.resume.enable"] = True
        out["train.resume.experiment_dir"] = str(args.resume)
        out["train.resume.epoch"] = args.resume_epoch
    out.update(_parse_set(item) for item in getattr(args, "set", None) or [])
    return out


def config_from_args(args: argparse.Namespace, default: Any = None) -> Any:
    """The config file plus flag overrides; resuming, the checkpoint's own config.

    ``--resume DIR`` continues what the checkpoint's run was asked to do; a
    ``--config`` file or flags given with it may change only the settings
    that leave the networks and the data alone (the others are refused).
    """
    source = _config_source(getattr(args, "config", None))
    if getattr(args, "resume", None) and getattr(args, "auto_resume", False):
        raise ConfigUserError(
            f"--auto-resume: cannot be combined with --resume {args.resume}; --resume continues "
            "that directory, --auto-resume finds the run itself (use one)"
        )
    if getattr(args, "resume", None):
        from nectargan.trainers.resume import plan_resume

        epoch = getattr(args, "resume_epoch", -1)
        plan = plan_resume(args.resume, epoch, source, overrides_from_args(args))
        for change in plan.changes:
            print(f"nectargan train: resume: changing {change}", file=sys.stderr)
        return plan.config
    if source is None:
        source = default
    config = Config.load(source)
    overrides = overrides_from_args(args)
    if _is_packaged(source):
        overrides = named_after_data(overrides)
    config = config.with_overrides(overrides, source=_describe_source(source))
    check_output_directory(config)
    return config


NAME_KEY, ENV_KEY, DATAROOT_KEY = (
    "common.experiment_name",
    "visualizer.visdom.env_name",
    "dataloader.dataroot",
)


def _is_packaged(source: Any) -> bool:
    return isinstance(source, Path) and source in {
        packaged_config_path(n) for n in PACKAGED_CONFIGS
    }


def data_name(dataroot: str) -> str:
    """A run name from a dataset folder: ``data/facades/`` -> ``facades`` (ASCII-safe)."""
    folder = Path(dataroot).expanduser().resolve().name
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", folder).lstrip("._-")
    return name or "data"


def named_after_data(overrides: dict[str, Any]) -> dict[str, Any]:
    """A packaged config's run and env names (``demo``, ``nectargan_demo``) describe its own
    data; on other data the run is named after that data unless the user named it, so a
    real run and the next ``nectargan demo`` never share an experiment name or a Visdom env."""
    dataroot = overrides.get(DATAROOT_KEY)
    if not dataroot or (NAME_KEY in overrides and ENV_KEY in overrides):
        return overrides
    name = str(overrides.get(NAME_KEY) or data_name(str(dataroot)))
    named = {NAME_KEY: name, ENV_KEY: f"nectargan_{name}"} | overrides
    print(
        f"note: run named after its data: experiment {named[NAME_KEY]}, Visdom env "
        f"{named[ENV_KEY]} (--name and --env choose others)",
        file=sys.stderr,
    )
    return named


def epoch_choice(value: str) -> int | str:
    """``--epoch``: a number of completed epochs, -1 or ``latest``, or ``best``; refused
    while parsing, with the reading every command and the Toolbox share."""
    try:
        return parse_epoch(value)
    except CheckpointUserError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--epoch: ")) from None


def add_epoch_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--epoch``, as ``test``, ``infer`` and ``export`` take it: which checkpoint of the run."""
    p.add_argument(
        "--epoch",
        type=epoch_choice,
        default="latest",
        metavar="N|latest|best",
        help="checkpoint after N epochs, latest (default; -1 too) or best (best validation L1, "
        "checkpoints/best.pt)",
    )


def _describe_source(source: Any) -> str:
    return "config" if source is None else f"{source} with the command line's settings"


def add_config_options(p: argparse.ArgumentParser, default: str = "packaged defaults") -> None:
    """``--config`` and ``--set``: enough to name any effective config."""
    p.add_argument(
        "--config",
        metavar="FILE",
        help="JSON config (missing keys take the defaults); 'demo' names the packaged demo "
        f"config (default: {default})",
    )
    add_set_option(p)


def add_set_option(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE``, repeatable: any config value by its dotted key."""
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any config value by dotted key, e.g. --set train.generator.features=16; an object "
        "value merges into that section (repeatable; keys in docs/config.md)",
    )
