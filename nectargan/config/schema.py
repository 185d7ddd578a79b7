"""The configuration schema: every key's type, default, constraint and one-line description.

This module is the single source of truth. ``default.json`` and
``docs/config.md`` are generated from it (``python -m nectargan.config.generate``),
the CLI's choice lists and the loss defaults are read from it, and
:class:`~nectargan.config.Config` validates against it. Checks that involve
several keys (crop size vs. network depth, ...) are in
:func:`NectarConfig._cross_checks`, reported together with the per-key ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from nectargan.config.augment_schema import AugmentConfig
from nectargan.config.section import Section
from nectargan.scheduling.schedule import Schedule, ScheduleKind

Direction = Literal["AtoB", "BtoA"]
Norm = Literal["batch", "instance", "instance_noaffine"]
NORM_HELP = (
    "Normalisation layers: 'batch', 'instance' (learnable scale/shift) or 'instance_noaffine' "
    "(none: upstream NectarGAN's)."
)
BlockType = Literal["plain", "residual"]
Upsample = Literal["transpose", "bilinear"]
LossSubspec = Literal["basic", "extended", "basic+vgg", "extended+vgg"]
PrecisionMode = Literal["auto", "off", "bf16", "fp16"]
LossName = Literal["G_GAN", "G_L1", "G_L2", "G_SOBEL", "G_LAP", "G_VGG", "D_real", "D_fake"]
Network = Literal["generator", "discriminator"]

PRECISION_MODES: tuple[str, ...] = get_args(PrecisionMode)
LOSS_SUBSPECS: tuple[str, ...] = get_args(LossSubspec)
LOSS_NAMES: tuple[str, ...] = get_args(LossName)

# px per side of a dashboard image cell; larger grids make multi-MB PNGs per update
MAX_IMAGE_SIZE = 2048

EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# ASCII only: a name becomes a folder (macOS stores accented names decomposed, so a
# composed 'ü' would not match its own <name>_vN folder), a Visdom env and a URL path.
NAME_RULE = (
    "expected ASCII letters, digits, '.', '_' or '-' (not starting with '.', '_' or '-'; "
    "the name becomes a folder and a Visdom env name)"
)
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _problem(message: str) -> PydanticCustomError:
    """A validation error whose text is ours, shown as is after the key."""
    return PydanticCustomError("nectargan", message)


def _non_empty_path(value: str | None, what: str) -> str | None:
    if value is not None and not value.strip():
        raise _problem(
            f"expected {what}, got {value!r} (an empty path would mean the current directory)"
        )
    return value


# -- common ---------------------------------------------------------------------------------


class CommonConfig(Section):
    """Where the run writes, what it is called, and how it uses the machine."""

    device: str = Field(
        "auto", description="'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'."
    )
    output_directory: str = Field(
        "output", description="Folder holding experiment directories <name>_v<N> and datasets/."
    )
    experiment_name: str = Field(
        "pix2pix",
        description="Experiment directory name stem: ASCII letters, digits, '.', '_', '-'.",
    )
    seed: int = Field(0, ge=0, description="Random seed for weights, data order and augmentation.")
    num_threads: int = Field(0, ge=0, description="torch CPU threads; 0: torch's default.")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.match(value):
            raise _problem(f"expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {value!r}")
        return value

    @field_validator("output_directory")
    @classmethod
    def _output(cls, value: str) -> str:
        _non_empty_path(value, "a directory path")
        return value

    @field_validator("experiment_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not EXPERIMENT_NAME.match(value):
            raise _problem(f"{NAME_RULE}, got {value!r}")
        return value


# -- dataloader -----------------------------------------------------------------------------


class SyntheticConfig(Section):
    """The built-in dataset, generated once when no dataroot is given."""

    n: int = Field(400, ge=10, description="Number of image pairs (split 80/10/10).")
    size: int = Field(64, ge=16, le=2048, description="Side of each square image, px.")
    seed: int = Field(0, ge=0, description="Seed of the generated shapes.")


class DataloaderConfig(Section):
    """Which images, how they are cut, and how they are batched."""

    dataroot: str | None = Field(
        None,
        description="Dataset folder with train/ (val/, test/) of side-by-side A|B images; "
        "null: the built-in synthetic dataset.",
    )
    direction: Direction = Field("AtoB", description="AtoB: left half is the input; BtoA: right.")
    load_size: int = Field(286, ge=8, description="Images are resized to this side first, px.")
    crop_size: int = Field(
        256, ge=8, description="Then cropped to this (random in training, centred otherwise), px."
    )
    channels: Literal[1, 3] = Field(3, description="1: grayscale, 3: RGB.")
    batch_size: int = Field(1, ge=1, description="Pairs per step (per process when distributed).")
    num_workers: int = Field(-1, ge=-1, description="Loader processes; -1: sized to the machine.")
    pin_memory: Literal["auto", True, False] = Field(
        "auto", description="Pinned host memory for CUDA copies; 'auto': on CUDA only."
    )
    augment: AugmentConfig = Field(
        default_factory=AugmentConfig, description="Training-time augmentation."
    )
    synthetic: SyntheticConfig = Field(
        default_factory=SyntheticConfig, description="The built-in synthetic dataset."
    )

    @field_validator("dataroot")
    @classmethod
    def _dataroot(cls, value: str | None) -> str | None:
        return _non_empty_path(value, "a dataset directory or null (the synthetic dataset)")


# -- train ----------------------------------------------------------------------------------


# The deepest U-Net the schema allows (2**10 = 1024 px crops at the least).
N_DOWNS_MAX = 10


class GeneratorConfig(Section):
    """The U-Net generator."""

    features: int = Field(
        64, ge=1, description="Channels of the first level (x2 per level, up to x8)."
    )
    n_downs: int = Field(
        8,
        ge=1,
        le=N_DOWNS_MAX,
        description="Levels, each halving H and W (crop_size must be a multiple of 2**n_downs).",
    )
    block_type: BlockType = Field("plain", description="'plain' conv blocks or 'residual' ones.")
    upsample: Upsample = Field(
        "transpose", description="'transpose' convolution or 'bilinear' resize + conv."
    )
    use_dropout: bool = Field(True, description="Dropout 0.5 in the three deepest decoder levels.")
    norm: Norm = Field("batch", description=NORM_HELP)


class DiscriminatorConfig(Section):
    """The PatchGAN discriminator."""

    base_channels: int = Field(64, ge=1, description="Channels of the first layer (x2 per layer).")
    max_channels: int = Field(512, ge=1, description="Cap on channels per layer.")
    n_layers: int = Field(3, ge=0, le=8, description="Strided layers (3: the 70x70 PatchGAN).")
    norm: Norm = Field("batch", description=NORM_HELP)


class OptimizerConfig(Section):
    """One network's Adam and LR schedule; every null key takes the train.* value."""

    lr_initial: float | None = Field(
        None, ge=0, description="Learning rate at the start; null: train.lr_initial."
    )
    lr_target: float | None = Field(
        None, ge=0, description="Learning rate reached after the decay; null: train.lr_target."
    )
    beta1: float | None = Field(None, ge=0, lt=1, description="Adam beta1; null: train.beta1.")
    epochs: int | None = Field(
        None, ge=0, description="Epochs at lr_initial before the decay; null: train.epochs."
    )
    epochs_decay: int | None = Field(
        None, ge=0, description="Epochs of linear decay to lr_target; null: train.epochs_decay."
    )


class OptimizersConfig(Section):
    """Separate settings for G and D (upstream's separate_lr_schedules)."""

    generator: OptimizerConfig = Field(
        default_factory=OptimizerConfig, description="The generator's optimizer and LR schedule."
    )
    discriminator: OptimizerConfig = Field(
        default_factory=OptimizerConfig,
        description="The discriminator's optimizer and LR schedule.",
    )


@dataclass(frozen=True)
class OptimizerSettings:
    """One network's effective optimizer settings, train.* defaults filled in."""

    lr_initial: float
    lr_target: float
    beta1: float
    epochs: int
    epochs_decay: int


class LossScheduleConfig(Section):
    """A loss weight moving from initial_value to target_value over a window of epochs."""

    start_epoch: float = Field(ge=0, description="Epoch at which the ramp starts.")
    end_epoch: float = Field(ge=0, description="Epoch at which target_value is reached.")
    initial_value: float = Field(description="Weight until start_epoch.")
    target_value: float = Field(description="Weight from end_epoch on.")
    kind: ScheduleKind = Field("linear", description="'linear' or 'exponential' interpolation.")

    @model_validator(mode="after")
    def _consistent(self) -> LossScheduleConfig:
        try:
            Schedule(**self.to_dict())
        except (TypeError, ValueError) as exc:
            raise _problem(str(exc).removeprefix("Schedule ")) from None
        return self


class LossConfig(Section):
    """The pix2pix objective: which terms, and their weights."""

    subspec: LossSubspec = Field(
        "basic",
        description="basic: GAN + L1; extended: + L2, Sobel, Laplacian; '+vgg': + perceptual.",
    )
    lambda_gan: float = Field(1.0, ge=0, description="Weight of G_GAN (fool the discriminator).")
    lambda_l1: float = Field(100.0, ge=0, description="Weight of G_L1, as in the pix2pix paper.")
    lambda_l2: float = Field(1.0, ge=0, description="Weight of G_L2 (extended only).")
    lambda_sobel: float = Field(1.0, ge=0, description="Weight of G_SOBEL edges (extended only).")
    lambda_laplacian: float = Field(1.0, ge=0, description="Weight of G_LAP (extended only).")
    lambda_vgg: float = Field(10.0, ge=0, description="Weight of G_VGG (+vgg only).")
    lambda_d: float = Field(
        0.5, ge=0, description="Weight of D_real and of D_fake; 0.5 halves D's objective."
    )
    vgg_weights: str | None = Field(
        None,
        description="Local VGG19 state_dict file for the '+vgg' subspecs; null: torchvision's "
        "vgg19-dcbb9e9d.pth in torch's cache (<torch.hub.get_dir()>/checkpoints).",
    )
    vgg_layers: list[str] | None = Field(
        None, min_length=1, description="VGG19 layers for G_VGG; null: relu1_1 .. relu5_1."
    )
    schedules: dict[LossName, LossScheduleConfig] = Field(
        default_factory=dict,
        description="Per-loss weight schedules {loss name: schedule}; replaces that loss's lambda.",
    )


class ResumeConfig(Section):
    """Continue an earlier run (normally set by `nectargan train --resume`)."""

    enable: bool = Field(False, description="Resume instead of starting a new experiment.")
    experiment_dir: str | None = Field(None, description="Experiment directory to continue.")
    epoch: int = Field(-1, ge=-1, description="Checkpoint epoch to load; -1: the latest.")
    auto: bool = Field(
        False,
        description="Continue the newest unfinished <name>_v<N> of the same run setup, or start "
        "one (`nectargan train --auto-resume`; for requeued cluster jobs).",
    )


class TrainConfig(Section):
    """Length, learning rates, networks, losses and speed settings of the training."""

    epochs: int = Field(100, ge=0, description="Epochs at the initial learning rate.")
    epochs_decay: int = Field(
        100, ge=0, description="Further epochs with the learning rate decaying linearly."
    )
    lr_initial: float = Field(0.0002, ge=0, description="Adam learning rate at the start.")
    lr_target: float = Field(0.0, ge=0, description="Learning rate reached after the decay.")
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam beta1 (beta2 is 0.999).")
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig, description="Generator.")
    discriminator: DiscriminatorConfig = Field(
        default_factory=DiscriminatorConfig, description="Discriminator."
    )
    optimizers: OptimizersConfig = Field(
        default_factory=OptimizersConfig, description="Per-network optimizer overrides."
    )
    loss: LossConfig = Field(default_factory=LossConfig, description="The objective.")
    mixed_precision: PrecisionMode = Field(
        "auto",
        description="'auto' (fp16 on CUDA, bf16 on CPUs with native bf16), 'off', 'bf16', "
        "'fp16' (CUDA only).",
    )
    channels_last: Literal["auto", True, False] = Field(
        "auto", description="channels_last memory format; 'auto': on CUDA only."
    )
    compile: bool = Field(False, description="Run the training step through torch.compile.")
    resume: ResumeConfig = Field(default_factory=ResumeConfig, description="Resuming.")

    def optimizer_for(self, network: Network) -> OptimizerSettings:
        """G's or D's effective settings: its own where set, else the shared train.* ones."""
        own = self.optimizers.generator if network == "generator" else self.optimizers.discriminator

        def pick(value: Any, shared: Any) -> Any:
            return shared if value is None else value

        return OptimizerSettings(
            lr_initial=pick(own.lr_initial, self.lr_initial),
            lr_target=pick(own.lr_target, self.lr_target),
            beta1=pick(own.beta1, self.beta1),
            epochs=pick(own.epochs, self.epochs),
            epochs_decay=pick(own.epochs_decay, self.epochs_decay),
        )


# -- save, visualizer -----------------------------------------------------------------------


class SaveConfig(Section):
    """What is written to the experiment directory, and how often."""

    model_save_rate: int = Field(
        1, ge=0, description="Checkpoint every N epochs (and after the last); 0: last only."
    )
    example_save_rate: int = Field(1, ge=0, description="Example images every N epochs; 0: never.")
    num_examples: int = Field(4, ge=0, description="Fixed val items shown as examples.")
    log_losses: bool = Field(True, description="Write loss_log.json and loss_log/.")
    loss_log_every: int = Field(1, ge=1, description="Record losses every N steps.")
    every_minutes: float = Field(
        30.0,
        ge=0,
        description="Also checkpoint mid-epoch (checkpoints/mid_epoch.pt, overwritten) after N "
        "minutes without a checkpoint; 0: off.",
    )
    keep_last: int = Field(
        5,
        ge=0,
        description="Keep only the newest N epoch checkpoints (older ones are deleted after "
        "each save; best.pt and latest.json's file stay); 0: keep all.",
    )
    keep_every: int = Field(
        0,
        ge=0,
        description="Also keep every epoch checkpoint whose epoch is a multiple of N, "
        "whatever save.keep_last says; 0: none.",
    )


class VisdomConfig(Section):
    """The live dashboard."""

    enable: bool = Field(True, description="Stream losses and images to a Visdom server.")
    env_name: str = Field("main", min_length=1, description="Visdom environment name.")
    server: str = Field("http://localhost", min_length=1, description="Server URL (or host).")
    port: int = Field(8097, ge=1, le=65535, description="Server port.")
    image_size: int = Field(
        300, ge=1, le=MAX_IMAGE_SIZE, description="Side of each shown image, px."
    )
    update_frequency: int = Field(50, ge=1, description="Update the dashboard every N steps.")
    update_interval: float = Field(
        2.0, ge=0.05, description="Seconds between the dashboard thread's sends."
    )
    autostart: bool = Field(
        True, description="Start a managed loopback server when none answers (local URLs only)."
    )
    val_every: int = Field(
        1,
        ge=0,
        description="Validate (L1/PSNR/SSIM, best.pt) every N epochs and after the last; 0: off.",
    )
    val_max_images: int = Field(
        64, ge=1, description="Validate on at most this many fixed, evenly spread val items."
    )


class VisualizerConfig(Section):
    """Dashboards."""

    visdom: VisdomConfig = Field(default_factory=VisdomConfig, description="Visdom.")


# -- the whole config -----------------------------------------------------------------------


class NectarConfig(Section):
    """A whole NectarGAN config."""

    common: CommonConfig = Field(default_factory=CommonConfig, description="Run-wide settings.")
    dataloader: DataloaderConfig = Field(default_factory=DataloaderConfig, description="Data.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training.")
    save: SaveConfig = Field(default_factory=SaveConfig, description="Outputs.")
    visualizer: VisualizerConfig = Field(
        default_factory=VisualizerConfig, description="Dashboards."
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> NectarConfig:
        problems = cross_check_problems(self)
        if problems:
            raise PydanticCustomError(
                "nectargan_cross",
                "{summary}",
                {"summary": "; ".join(problems), "problems": problems},
            )
        return self


CROSS_RULES: tuple[str, ...] = (
    "`dataloader.crop_size` <= `dataloader.load_size`.",
    "`dataloader.crop_size` is a multiple of `2 ** train.generator.n_downs`.",
    "`train.epochs + train.epochs_decay` >= 1.",
    "`train.loss.schedules` names only losses of `train.loss.subspec` (checked when the losses are built).",
)


def _fitting_n_downs(crop_size: int, step: int) -> str:
    """What would fit instead: the deepest n_downs that divides crop_size, or a crop size."""
    fits = [n for n in range(1, N_DOWNS_MAX + 1) if crop_size % 2**n == 0]
    crop = max(step, round(crop_size / step) * step)
    other = f"crop_size {crop}"
    if fits:
        return f" (train.generator.n_downs {fits[-1]} fits crop_size {crop_size}; or {other})"
    return f" (or {other})"


def cross_check_problems(cfg: NectarConfig) -> list[str]:
    """Rules between keys, each problem naming the key to change."""
    dl, train = cfg.dataloader, cfg.train
    problems = []
    if dl.crop_size > dl.load_size:
        problems.append(
            f"dataloader.crop_size: expected <= dataloader.load_size ({dl.load_size}), "
            f"got {dl.crop_size}"
        )
    step = 2**train.generator.n_downs
    if dl.crop_size % step:
        problems.append(
            f"dataloader.crop_size: expected a multiple of 2**train.generator.n_downs = {step}, "
            f"got {dl.crop_size}{_fitting_n_downs(dl.crop_size, step)}"
        )
    if train.epochs + train.epochs_decay < 1:
        problems.append(
            "train.epochs: expected train.epochs + train.epochs_decay >= 1 (at least one epoch "
            f"to train), got {train.epochs} + {train.epochs_decay}"
        )
    return problems


SECTIONS: tuple[str, ...] = tuple(NectarConfig.model_fields)


def default_values() -> dict[str, Any]:
    """Every key's default, as nested plain JSON values (what ``default.json`` holds)."""
    return NectarConfig().to_dict()


def field_default(section: type[Section], key: str) -> Any:
    """One key's default value (factories called)."""
    return section.model_fields[key].get_default(call_default_factory=True)
