"""Converting an upstream NectarGAN config (``{"config": {...}}``) into ours.

Upstream keeps every setting under one top-level ``config`` object, with
per-network learning-rate blocks, ``*_chance`` augmentation keys, class
names for blocks (``UnetBlock``) and upsampling (``Transposed``), and an
``n_downs`` that counts neither the U-Net's first down block nor its bottleneck. :func:`convert`
maps what has a counterpart and returns one note per key it could not map
(or mapped only approximately), saying why.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from nectargan.config.augment_schema import from_upstream as augment_from_upstream
from nectargan.config.problems import ConfigError
from nectargan.config.schema import EXPERIMENT_NAME, SECTIONS
from nectargan.utils.numbers import is_int

BLOCK_TYPES = {"UnetBlock": "plain", "ResidualUnetBlock": "residual"}
UPSAMPLE = {"Transposed": "transpose", "Bilinear": "bilinear"}
LR_KEYS = {"initial": "lr_initial", "target": "lr_target", "epochs": "epochs"}
LR_KEYS["epochs_decay"] = "epochs_decay"
# Upstream's n_downs leaves out its first down block and its bottleneck: ours counts both.
UPSTREAM_EXTRA_LEVELS = 2
UPSTREAM_N_DOWNS = 6  # upstream's default, applied when its config leaves the key out
UPSTREAM_NORM = "instance_noaffine"
UNET_DIFFERENCES = (
    "same layers and parameter count as upstream's U-Net; ours pads its down convs with zeros "
    "(upstream: reflect) and uses LeakyReLU(0.2) after the bottleneck (upstream: ReLU)"
)
RESIDUAL_DIFFERENCE = (
    "'residual' here adds two 3x3 convs per level (upstream: a strided 1x1 shortcut conv), "
    "so the parameter count differs from upstream's"
)
BILINEAR_DIFFERENCE = (
    "upstream's bilinear up convs always have a bias, ours drop it before a norm: "
    "one bias per up channel fewer here"
)


def is_upstream(data: Mapping[str, Any]) -> bool:
    """Upstream files hold one ``config`` object; ours never have a ``config`` key."""
    return isinstance(data.get("config"), Mapping) and not set(data) & set(SECTIONS)


def upstream_hint(data: Mapping[str, Any], source: str) -> str | None:
    """The problem line for an upstream file given where ours is expected."""
    if not is_upstream(data):
        return None
    where = shlex.quote(source) if source != "config" else "FILE"
    return (
        'top level: this is an upstream NectarGAN config (everything under "config"); '
        f"convert it first: nectargan config import {where} --output converted.json"
    )


class _Converter:
    def __init__(self, upstream: Mapping[str, Any]) -> None:
        self.up = upstream
        self.out: dict[str, Any] = {}
        self.notes: list[str] = []

    def put(self, path: str, value: Any) -> None:
        node = self.out
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value

    def note(self, key: str, why: str) -> None:
        self.notes.append(f"{key}: {why}")

    def section(self, name: str) -> Mapping[str, Any]:
        value = self.up.get(name) or {}
        if not isinstance(value, Mapping):
            self.note(name, f"expected an object, got {value!r}; skipped")
            return {}
        return value

    def leftovers(self, prefix: str, section: Mapping[str, Any], handled: set[str]) -> None:
        for key in section:
            if key not in handled:
                self.note(f"{prefix}.{key}", "no such setting here; dropped")

    # -- sections ----------------------------------------------------------------------

    def common(self) -> None:
        c = self.section("common")
        device, ids = c.get("device"), c.get("gpu_ids")
        if device in ("cpu", "cuda"):
            if device == "cuda" and isinstance(ids, list) and len(ids) == 1 and ids[0]:
                device = f"cuda:{ids[0]}"
            self.put("common.device", device)
        elif device is not None:
            self.note(
                "common.device", f"{device!r} is not supported (auto, cpu, cuda[:N]); left at auto"
            )
        if isinstance(ids, list) and len(ids) > 1:
            self.note(
                "common.gpu_ids",
                f"{ids}: use `nectargan train --nproc {len(ids)}` for several GPUs",
            )
        if "cudnn" in c:
            self.note("common.cudnn", "no cuDNN settings here (torch's defaults apply); dropped")
        out_dir = c.get("output_directory")
        if out_dir:
            self.put("common.output_directory", out_dir)
        elif out_dir is not None:
            self.note(
                "common.output_directory",
                "empty (the current directory) upstream; ours defaults to 'output'",
            )
        name = c.get("experiment_name")
        if isinstance(name, str) and EXPERIMENT_NAME.match(name):
            self.put("common.experiment_name", name)
        elif name is not None:
            self.note(
                "common.experiment_name",
                f"{name!r} cannot be a directory name here; left at the default",
            )
        if "experiment_version" in c:
            self.note(
                "common.experiment_version",
                "versions are picked automatically (next free <name>_v<N>)",
            )
        self.leftovers(
            "common",
            c,
            {
                "device",
                "gpu_ids",
                "cudnn",
                "output_directory",
                "experiment_name",
                "experiment_version",
            },
        )

    def dataloader(self) -> None:
        d = self.section("dataloader")
        root = d.get("dataroot")
        if root:
            self.put("dataloader.dataroot", root)
        elif root is not None:
            self.note(
                "dataloader.dataroot", "empty upstream; left null (the built-in synthetic dataset)"
            )
        for key in ("direction", "batch_size", "num_workers"):
            if key in d:
                self.put(f"dataloader.{key}", d[key])
        load = d.get("load") or {}
        if "input_nc" in load:
            self.put("dataloader.channels", load["input_nc"])
        for key in ("load_size", "crop_size"):
            if key in load:
                self.put(f"dataloader.{key}", load[key])
        self.leftovers("dataloader.load", load, {"input_nc", "load_size", "crop_size"})
        masking = d.get("masking") or {}
        if masking:
            state = "enabled" if masking.get("enable") else "disabled"
            self.note("dataloader.masking", f"no mask support here ({state} upstream); dropped")
        augment, notes = augment_from_upstream(d.get("augmentations") or {})
        for key, value in augment.items():
            self.put(f"dataloader.augment.{key}", value)
        self.notes.extend(f"dataloader.{n}" for n in notes)
        self.leftovers(
            "dataloader",
            d,
            {
                "dataroot",
                "direction",
                "batch_size",
                "num_workers",
                "load",
                "masking",
                "augmentations",
            },
        )

    def network(self, net: str, t: Mapping[str, Any]) -> None:
        n = t.get(net) or {}
        prefix = f"train.{net}"
        if net == "generator":
            self.generator(prefix, n)
            handled = {"features", "n_downs", "block_type", "upsample_type", "use_checkpointing"}
        else:
            for key in ("n_layers", "base_channels", "max_channels"):
                if key in n:
                    self.put(f"{prefix}.{key}", n[key])
            handled = {"n_layers", "base_channels", "max_channels"}
        self.leftovers(prefix, n, handled | {"learning_rate", "optimizer"})

    def generator(self, prefix: str, n: Mapping[str, Any]) -> None:
        """Upstream's U-Net, level for level: same widths, convs and parameter count.

        Upstream builds a first down block, ``n_downs`` down blocks and a
        bottleneck (``n_downs + 2`` halvings), every other block followed by
        instance norm without scale/shift: ours with ``n_downs + 2`` levels and
        ``instance_noaffine`` has the same layers and parameters (plain blocks,
        transposed convs).
        """
        if "features" in n:
            self.put(f"{prefix}.features", n["features"])
        downs = n.get("n_downs", UPSTREAM_N_DOWNS)
        if is_int(downs):
            self.put(f"{prefix}.n_downs", downs + UPSTREAM_EXTRA_LEVELS)
            if "n_downs" in n:
                self.note(
                    f"{prefix}.n_downs",
                    f"upstream {downs} counts neither its first down block nor its bottleneck; "
                    f"ours counts every halving: {downs + UPSTREAM_EXTRA_LEVELS}",
                )
        else:
            self.note(f"{prefix}.n_downs", f"{downs!r}: expected an integer; left at the default")
        for key, ours, table in (
            ("block_type", "block_type", BLOCK_TYPES),
            ("upsample_type", "upsample", UPSAMPLE),
        ):
            if key in n:
                if n[key] in table:
                    self.put(f"{prefix}.{ours}", table[n[key]])
                else:
                    self.note(
                        f"{prefix}.{key}",
                        f"{n[key]!r}: expected one of {list(table)}; left at the default",
                    )
        self.put(f"{prefix}.norm", UPSTREAM_NORM)
        self.note(f"{prefix}.norm", f"{UPSTREAM_NORM!r}: upstream's instance norm, no scale/shift")
        self.note(prefix, UNET_DIFFERENCES)
        if n.get("block_type") == "ResidualUnetBlock":
            self.note(f"{prefix}.block_type", RESIDUAL_DIFFERENCE)
        if n.get("upsample_type") == "Bilinear":
            self.note(f"{prefix}.upsample_type", BILINEAR_DIFFERENCE)
        if "use_checkpointing" in n:
            self.note(f"{prefix}.use_checkpointing", "no gradient checkpointing here; dropped")

    def optimizers(self, t: Mapping[str, Any]) -> None:
        """G's learning-rate block becomes train.*; D's differences its own overrides."""
        separate = bool(t.get("separate_lr_schedules"))
        g, d = t.get("generator") or {}, t.get("discriminator") or {}
        g_lr, d_lr = g.get("learning_rate") or {}, d.get("learning_rate") or {}
        for key, ours in LR_KEYS.items():
            if key in g_lr:
                self.put(f"train.{ours}", g_lr[key])
        if "beta1" in (g.get("optimizer") or {}):
            self.put("train.beta1", g["optimizer"]["beta1"])
        d_beta = (d.get("optimizer") or {}).get("beta1")
        if d_beta is not None and d_beta != (g.get("optimizer") or {}).get("beta1"):
            self.put("train.optimizers.discriminator.beta1", d_beta)
        for key, ours in LR_KEYS.items():
            if key not in d_lr or d_lr[key] == g_lr.get(key):
                continue
            if separate or key in ("initial", "target"):
                self.put(f"train.optimizers.discriminator.{ours}", d_lr[key])
            else:
                self.note(
                    f"train.discriminator.learning_rate.{key}",
                    "ignored upstream without separate_lr_schedules (D follows G's schedule); dropped",
                )

    def train(self) -> None:
        t = self.section("train")
        for net in ("generator", "discriminator"):
            self.network(net, t)
        self.optimizers(t)
        load = t.get("load") or {}
        if load.get("continue_train"):
            self.note("train.load", "resume with `nectargan train --resume DIR [--resume-epoch N]`")
        loss = t.get("loss") or {}
        for key, value in loss.items():
            if key.startswith("lambda_"):
                self.put(f"train.loss.{key}", value)
            else:
                self.note(f"train.loss.{key}", "no such loss setting here; dropped")
        extended = any(loss.get(k) for k in ("lambda_l2", "lambda_sobel", "lambda_laplacian"))
        vgg = bool(loss.get("lambda_vgg"))
        subspec = ("extended" if extended else "basic") + ("+vgg" if vgg else "")
        self.put("train.loss.subspec", subspec)
        if vgg:
            self.note(
                "train.loss.lambda_vgg",
                "VGG19 weights are read from torch's cache (where torchvision's download left "
                "vgg19-dcbb9e9d.pth) or train.loss.vgg_weights; nothing is downloaded",
            )
        self.leftovers(
            "train", t, {"separate_lr_schedules", "load", "generator", "discriminator", "loss"}
        )

    def save(self) -> None:
        s = self.section("save")
        for key in ("model_save_rate", "example_save_rate", "num_examples"):
            if key in s:
                self.put(f"save.{key}", s[key])
        if s.get("save_model") is False:
            self.put("save.model_save_rate", 0)
            self.note(
                "save.save_model", "false: ours still saves the last epoch (model_save_rate 0)"
            )
        if s.get("save_examples") is False:
            self.put("save.example_save_rate", 0)
        if "auto_increment_version" in s:
            self.note(
                "save.auto_increment_version", "always on here (a run never reuses a directory)"
            )
        self.leftovers(
            "save",
            s,
            {
                "model_save_rate",
                "example_save_rate",
                "num_examples",
                "save_model",
                "save_examples",
                "auto_increment_version",
            },
        )

    def visualizer(self) -> None:
        v = self.section("visualizer")
        visdom = v.get("visdom") or {}
        keys = ("enable", "env_name", "server", "port", "image_size", "update_frequency")
        for key in keys:
            if key in visdom:
                self.put(f"visualizer.visdom.{key}", visdom[key])
        self.leftovers("visualizer.visdom", visdom, set(keys))
        self.leftovers("visualizer", v, {"visdom"})

    def run(self) -> tuple[dict[str, Any], list[str]]:
        kind = self.up.get("config_type", "pix2pix")
        if kind != "pix2pix":
            self.note(
                "config_type",
                f"{kind!r}: only pix2pix configs can be converted; the rest is best effort",
            )
        self.common()
        self.dataloader()
        self.train()
        self.save()
        self.visualizer()
        self.leftovers("config", self.up, {"config_type", *SECTIONS})
        return self.out, self.notes


def convert(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Ours (only the keys upstream set; the rest keep our defaults) and the notes."""
    upstream = data.get("config", data)
    if not isinstance(upstream, Mapping):
        raise ConfigError([f"config: expected an object, got {upstream!r}"], "upstream config")
    return _Converter(upstream).run()
