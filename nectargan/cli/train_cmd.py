"""``nectargan train``, ``nectargan test`` and ``nectargan demo``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from nectargan.cli.commands import add_command, call_with_flags
from nectargan.cli.config_flags import (
    add_config_options,
    add_epoch_option,
    config_from_args,
    packaged_config_path,
)
from nectargan.config.schema import PRECISION_MODES
from nectargan.errors import CheckpointUserError, ConfigUserError
from nectargan.runs.records import run_seconds
from nectargan.utils.durations import format_duration
from nectargan.utils.launch import launched_world_size
from nectargan.utils.progress_bar import ProgressBar

DEMO_ENV = "nectargan_demo"


# -- shared pieces ----------------------------------------------------------------------


def describe_run(trainer: Any) -> None:
    """What is about to happen and where to watch it."""
    import torch  # already loaded by the trainer; kept out of the CLI's import time

    dl = trainer.config.dataloader
    loader = trainer.train_loader
    resumed = (
        f" (resuming after epoch {trainer.epochs_completed})" if trainer.epochs_completed else ""
    )
    if trainer.progress.batches_done:
        resumed = (
            f" (resuming epoch {trainer.current_epoch + 1} after batch "
            f"{trainer.progress.batches_done})"
        )
    print(f"experiment: {trainer.experiment_dir}{resumed}")
    print(
        f"data: {dl.dataroot} ({len(loader.dataset)} training pairs, batch {dl.batch_size}, "
        f"{len(loader)} iterations/epoch, {dl.crop_size}px)"
    )
    if trainer.procs.distributed:
        n = trainer.world_size
        print(
            f"processes: {n} ({trainer.procs.backend}), batch {dl.batch_size} per process "
            f"= {n * dl.batch_size} per step, {torch_threads()} thread(s) per process"
        )
    fmt = ", channels_last" if trainer.memory_format == torch.channels_last else ""
    compiled = ", compiled" if trainer.config.train.compile else ""
    print(f"device: {trainer.device}, precision {trainer.precision.name}{fmt}{compiled}")
    if getattr(trainer, "monitor", None) is not None:
        print(trainer.monitor.describe())
    if trainer.dashboard_url:
        print(f"dashboard: {trainer.dashboard_url}")
    else:
        print("dashboard: off")
    sys.stdout.flush()


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def run_training(trainer: Any, stream: Any = None) -> float | None:
    """``trainer.fit()`` with a progress bar (it/s, ETA, losses as of the last display step).

    Returns the run's duration as ``report`` and ``replay`` will print it
    (:func:`nectargan.runs.records.run_seconds`). Interruptions propagate (the
    trainer has already saved its state by then).
    """
    from nectargan.trainers.timing import read_timing  # the trainer loaded torch already

    remaining = trainer.total_epochs - trainer.epochs_completed
    done = trainer.progress.batches_done  # of the epoch a mid-epoch checkpoint stopped in
    if not trainer.is_main_process:  # one progress bar per job, not per rank
        stream = open(os.devnull, "w")  # noqa: SIM115 (closed with the bar)
    bar = ProgressBar(remaining * len(trainer.train_loader) - done, stream=stream)

    def observe(t: Any, idx: int) -> None:
        bar.update(1, t.last_losses or None, desc=f"epoch {t.current_epoch + 1}/{t.total_epochs}")

    trainer.step_observers.append(observe)
    try:
        trainer.fit(after_epoch=lambda t: bar.write(t.epoch_summary()))
    finally:
        bar.close()
        trainer.step_observers.remove(observe)
        if not trainer.is_main_process:
            stream.close()
    return run_seconds(read_timing(trainer.experiment_dir))


def print_metrics_table(rows: dict[str, dict[str, float]]) -> None:
    """``{'trained': {'l1': ..}, 'untrained': {...}}`` as an aligned table."""
    names = {"l1": "L1 (lower is better)", "psnr": "PSNR dB (higher)", "ssim": "SSIM (higher)"}
    header = f"{'metric':<22}" + "".join(f"{col:>12}" for col in rows)
    print(header)
    for key, label in names.items():
        print(f"{label:<22}" + "".join(f"{vals[key]:>12.4f}" for vals in rows.values()))


# -- train --------------------------------------------------------------------------------


def torchrun_args(argv: list[str], nproc: int) -> list[str]:
    """``torchrun`` arguments for ``nectargan <argv minus --nproc>`` on ``nproc`` local ranks."""
    return [
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        "-m",
        "nectargan",
        *strip_option(argv, "--nproc"),
    ]


def strip_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE`` (options before ``--`` only)."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--":
            return out + argv[i:]
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


def launch_distributed(args: argparse.Namespace) -> int:
    """Run ``torchrun`` (``python -m torch.distributed.run``) here, starting ``--nproc`` ranks.

    In-process rather than ``exec``: identical launch, but Ctrl-C, which the
    terminal delivers to torchrun and every rank at once, ends in exit status
    130 and one line instead of torchrun's traceback. Each rank saves its
    state itself (rank 0 writes the checkpoint and flushes the log).
    """
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    if launched_world_size() > 1:
        raise ConfigUserError(
            "--nproc: already running under a distributed launcher (WORLD_SIZE set)"
        )
    sys.stdout.flush()
    try:
        torchrun.main(torchrun_args(args.argv, args.nproc))
    except SignalException as exc:
        print(f"nectargan train: stopped all ranks ({exc})", file=sys.stderr)
        return 130
    except ChildFailedError:  # torchrun has reported which rank failed and why
        return 1
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """train a pix2pix model (progress bar, live dashboard, checkpoints)

    Train pix2pix. Without --dataroot (or dataloader.dataroot), the built-in synthetic
    dataset is generated once and used.
    """
    from contextlib import nullcontext

    from nectargan.trainers.signals import handling_signals

    # SIGTERM from here on stops like Ctrl-C (exit 143). A rank under torchrun gets every
    # signal twice (terminal + launcher): the trainer's interrupt_once() handles those.
    guard = handling_signals() if launched_world_size() <= 1 else nullcontext()
    with guard:
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from nectargan.trainers import Pix2pixTrainer
    from nectargan.trainers.resume import AlreadyComplete
    from nectargan.utils.diskfull import StorageStop

    if args.nproc is not None and args.nproc < 1:
        raise ConfigUserError(f"--nproc: expected a number of processes >= 1, got {args.nproc}")
    config = config_from_args(args)  # a bad setting fails here, before any rank starts
    check_loss_files(config)
    try:
        if args.nproc is not None and args.nproc > 1:
            _stop_if_complete(config)  # no ranks started for a run with nothing to do
            return launch_distributed(args)
        trainer = Pix2pixTrainer(config)
    except AlreadyComplete as done:  # every rank of a torchrun job ends here; rank 0 says so
        if os.environ.get("RANK", "0") == "0":
            print(f"auto-resume: {done}")
        return 0
    if not trainer.is_main_process:  # rank 0 speaks for the job
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the rank)
    describe_run(trainer)
    try:
        seconds = run_training(trainer)
    except KeyboardInterrupt:
        _print_resume_hint(trainer)
        raise
    except StorageStop as exc:
        print(f"nectargan train: {exc}", file=sys.stderr)
        _print_resume_hint(trainer)
        return exc.exit_code
    except RuntimeError as exc:  # a lost rank or node: say which, not a traceback per rank
        from nectargan.trainers.peer_loss import describe_peer_loss

        lost = describe_peer_loss(exc, trainer.world_size) if trainer.procs.distributed else None
        if lost is None:
            raise
        print(f"nectargan train (rank {trainer.rank}): {lost}", file=sys.stderr, flush=True)
        _print_resume_hint(trainer)
        return 1
    trainer.close()
    print(
        f"done: {trainer.total_epochs} epochs in {format_duration(seconds)} "
        "(the trainer's epoch times; validation not included)"
    )
    print(f"checkpoints: {trainer.experiment_dir / 'checkpoints'}")
    print(f"evaluate with: {_evaluate_command(trainer)}")
    return 0


def check_loss_files(config: Any) -> None:
    """Files the losses will read (a '+vgg' subspec's VGG19 weights) are there: a missing one
    stops the run before any experiment directory is made, naming where it looked."""
    from nectargan.losses.pix2pix_objective import vgg_weights_for

    vgg_weights_for(config.train.loss.to_dict(), config.train.loss.subspec)


def _evaluate_command(trainer: Any) -> str:
    """``nectargan test`` for this run, with ``--split val`` when its test/ split is empty."""
    from nectargan.trainers.evaluate import evaluable_split

    command = f"nectargan test --experiment {shlex.quote(str(trainer.experiment_dir))}"
    root = trainer.config.dataloader.dataroot
    split = evaluable_split(root) if root else "test"
    return command if split == "test" else f"{command} --split {split}"


def _stop_if_complete(config: Any) -> None:
    """``--auto-resume`` of a finished run: raise ``AlreadyComplete`` before any rank starts."""
    from nectargan.trainers.resume import AlreadyComplete, decide, describe

    resume = config.train.resume
    if not resume.auto or resume.enable:
        return
    decision = decide(config, lambda message: None)  # the ranks say the rest themselves
    if decision.complete:
        total = config.train.epochs + config.train.epochs_decay
        raise AlreadyComplete(describe(decision, total))


def _print_resume_hint(trainer: Any) -> None:
    """``resume with: ...`` only when there is a checkpoint to resume from."""
    from nectargan.trainers.resume.choose import find_checkpoint

    if not trainer.is_main_process or trainer.experiment_dir is None:
        return
    try:
        find_checkpoint(trainer.experiment_dir)
    except CheckpointUserError:
        print(
            f"no checkpoint was written in {trainer.experiment_dir}; there is nothing to resume",
            file=sys.stderr,
        )
        return
    resume = shlex.quote(str(trainer.experiment_dir))  # a hint to paste, spaces and all
    print(f"resume with: nectargan train --resume {resume}", file=sys.stderr)


# -- test ---------------------------------------------------------------------------------


def cmd_test(args: argparse.Namespace) -> int:
    """run a trained generator on the test split: output triplets and L1/PSNR/SSIM"""
    from nectargan.trainers.evaluate import evaluate_experiment

    if args.max_images is not None and args.max_images < 1:
        raise ConfigUserError(
            f"--max-images: expected a number of images >= 1, got {args.max_images}"
        )

    report = call_with_flags(evaluate_experiment, args, experiment_dir=args.experiment)
    m = report["metrics"]
    state = " (interrupted run)" if report["interrupted"] else ""
    if args.epoch == "best":
        state += " (best.pt: best validation L1)"
    print(
        f"{report['split']} split, {report['n_images']} images, after epoch {report['epoch']}{state}: "
        f"L1 {m['l1']:.4f}  PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}"
    )
    print(f"outputs: {report['out_dir']}")
    print(f"metrics: {Path(report['out_dir']) / 'metrics.json'}")
    return 0


# -- demo ---------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """synthetic data + live dashboard + a few minutes of training + test summary

    Generates the synthetic dataset, starts a loopback Visdom server if none answers, trains
    a small pix2pix model with the live dashboard, then evaluates it on the test split
    against the untrained generator.
    """
    from nectargan.trainers import Pix2pixTrainer
    from nectargan.trainers.evaluate import eval_dataset, evaluate_experiment, untrained_baseline

    started = time.monotonic()
    trainer = Pix2pixTrainer(config_from_args(args, default=packaged_config_path("demo")))
    describe_run(trainer)
    if trainer.dashboard_url:
        print(f"open {trainer.dashboard_url} to watch the losses and images live")
    train_seconds = run_training(trainer)
    trainer.close()
    report = evaluate_experiment(trainer.experiment_dir)
    baseline = untrained_baseline(trainer.config, eval_dataset(trainer.config, "test"))
    print(
        f"\ntest split ({report['n_images']} pairs), generator after {report['epoch']} epochs "
        f"vs. the same generator untrained:"
    )
    print_metrics_table({"untrained": baseline, "trained": report["metrics"]})
    print(f"\ntest outputs (real_A | fake_B | real_B): {report['out_dir']}")
    print(f"examples per epoch: {trainer.experiment_dir / 'examples'}")
    print(
        f"training took {format_duration(train_seconds)} (validation not included), "
        f"the whole demo {format_duration(time.monotonic() - started)}"
    )
    if trainer.dashboard_url:
        print(
            f"dashboard: {trainer.dashboard_url} (the server keeps running; "
            f"`nectargan visdom stop --port {trainer.config.visualizer.visdom.port}` stops it)"
        )
    return 0


# -- argument parsing ---------------------------------------------------------------------


def _add_common_train_options(p: argparse.ArgumentParser, default_config: str) -> None:
    add_config_options(p, default_config)
    p.add_argument("--epochs", type=int, help="epochs at the initial learning rate")
    p.add_argument("--epochs-decay", type=int, help="further epochs with linear LR decay to 0")
    p.add_argument(
        "--dataroot", metavar="DIR", help="dataset with train/ val/ test/ (default: synthetic)"
    )
    p.add_argument("--output", metavar="DIR", help="output directory for experiments")
    p.add_argument("--name", help="experiment name (directory <output>/<name>_v<N>)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=PRECISION_MODES, help="mixed precision")
    p.add_argument(
        "--visdom",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live dashboard on/off (default: from the config)",
    )
    p.add_argument("--port", type=int, help="Visdom server port")
    p.add_argument("--env", help="Visdom environment name")


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", cmd_train)
    _add_common_train_options(p, "packaged defaults")
    p.add_argument("--resume", metavar="DIR", help="continue the training in experiment DIR")
    p.add_argument(
        "--resume-epoch", type=int, default=-1, help="checkpoint epoch to resume from (-1: latest)"
    )
    p.add_argument(
        "--auto-resume",
        action="store_true",
        help="continue the newest unfinished <name>_v<N> of this same run setup (from its "
        "newest checkpoint, mid-epoch included), exit 0 if it is complete, else start one: "
        "the same command for a job's first start and every requeue (train.resume.auto)",
    )
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train with N processes on this machine (DistributedDataParallel via torchrun; "
        "--batch-size is per process); same as `torchrun --nproc_per_node N -m nectargan train`",
    )


def _add_test(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "test", cmd_test)
    p.add_argument("--experiment", required=True, metavar="DIR", help="experiment directory")
    add_epoch_option(p)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument(
        "--precision",
        default="off",
        choices=("auto", "off", "bf16", "fp16"),
        help="forward-pass precision (default: off, fp32); the live validation uses the "
        "run's train.mixed_precision, e.g. bf16",
    )
    p.add_argument(
        "--max-images",
        type=int,
        metavar="N",
        help="at most N evenly spread images, the ones the live validation with "
        "val_max_images N uses (default: all)",
    )
    p.add_argument("--dataroot", metavar="DIR", help="dataset (default: the one the run used)")
    p.add_argument(
        "--out", dest="out_dir", metavar="DIR", help="output folder (default: DIR/test/epoch_NNNN)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument(
        "--no-images",
        dest="save_images",
        action="store_false",
        help="only metrics.json, no triplets",
    )


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "demo", cmd_demo)
    _add_common_train_options(p, "demo")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``test`` and ``demo`` to the top-level CLI."""
    for add in (_add_train, _add_test, _add_demo):
        add(subparsers)
