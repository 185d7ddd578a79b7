"""`nectargan data ...`: download, preview, make, pair and split paired datasets."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from typing import Any

from nectargan.cli.commands import add_command
from nectargan.cli.config_flags import add_config_options, config_from_args


def _user_files(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Every path a data command touches is the user's: an OS refusal there is a user error."""

    @functools.wraps(fn)  # its docstring is the command's help
    def run(args: argparse.Namespace) -> int:
        from nectargan.errors import user_files

        with user_files(f"{args.data_command}"):
            return fn(args)

    return run


@_user_files
def cmd_synth(args: argparse.Namespace) -> int:
    """generate the built-in synthetic paired dataset

    Label maps of random shapes (A) -> shaded renderings (B).
    """
    # Imported here so `nectargan --help` does not pay for importing torch.
    from nectargan.dataset.synth import generate_synthetic_dataset

    start = time.perf_counter()
    out = generate_synthetic_dataset(
        args.out,
        n=args.n,
        size=args.size,
        seed=args.seed,
        ratios=args.ratios,
        overwrite=args.overwrite,
    )
    print(
        f"synthetic dataset: {args.n} pairs of {args.size}px in {out} "
        f"({time.perf_counter() - start:.1f}s)"
    )
    return 0


@_user_files
def cmd_pair(args: argparse.Namespace) -> int:
    """join A and B folders into side-by-side A|B images

    Match images by file name (without extension). If both folders hold train/val/test
    subfolders, each is paired separately.
    """
    from nectargan.dataset.tools import carry_out_pair, plan_pair

    plan = plan_pair(args.a_dir, args.b_dir, args.out, resize=args.resize)
    return _write_or_describe(args, plan, carry_out_pair, "paired")


@_user_files
def cmd_split(args: argparse.Namespace) -> int:
    """copy a folder of images into train/val/test by ratio"""
    from nectargan.dataset.tools import carry_out_split, plan_split

    plan = plan_split(args.src, args.out, ratios=args.ratios, seed=args.seed)
    for warning in plan.warnings:
        print(warning, file=sys.stderr)
    return _write_or_describe(args, plan, carry_out_split, "split")


def _write_or_describe(
    args: argparse.Namespace, plan: Any, carry_out: Callable[[Any], dict[str, int]], verb: str
) -> int:
    """A folder tool's two ends, shared: ``--dry-run`` prints the checked plan, else the
    plan is carried out and the images written per split are counted."""
    if args.dry_run:
        print("\n".join(["dry run: nothing written", *plan.describe()]))
        return 0
    counts = carry_out(plan)
    detail = ", ".join(f"{k}: {v}" for k, v in counts.items())
    print(f"{verb} {sum(counts.values())} images into {args.out} ({detail})")
    return 0


@_user_files
def cmd_download(args: argparse.Namespace) -> int:
    """download a standard pix2pix dataset (facades, maps, ...)

    Streams BASE/NAME.tar.gz (resuming a partial download), unpacks it safely into
    ROOT/NAME, checks the layout and prints the counts.
    """
    from nectargan.dataset.download import download_dataset, summary
    from nectargan.dataset.transfer import TransferOptions

    opts = TransferOptions(
        connect_timeout=args.timeout, read_timeout=args.timeout, retries=args.retries
    )
    result = download_dataset(args.name, args.root, url=args.url, force=args.force, options=opts)
    print(summary(result))
    return 0


@_user_files
def cmd_preview(args: argparse.Namespace) -> int:
    """image grid of pairs as the trainer sees them (after augmentation)

    Pairs in columns, each input | target, through the same dataset and augmentation a
    training run with this config uses; --split val shows them without augmentation. The
    output's suffix (.png, .jpg, .webp...) sets its format.
    """
    from nectargan.dataset.preview import check_columns, image_format, write_preview
    from nectargan.trainers.data import dataroot_for, make_dataset

    image_format(args.png)  # a bad suffix or column count is refused before any work
    check_columns(args.columns)
    config = config_from_args(args)
    root = dataroot_for(config)
    train = args.split == "train"
    dataset = make_dataset(config.dataloader, root, args.split, train=train)
    preview = write_preview(dataset, args.n, args.seed, args.png, columns=args.columns)
    if preview.note:
        print(f"note: {preview.note}", file=sys.stderr)
    what = "augmented as in training" if train else "no augmentation"
    print(f"{preview.shown} {args.split} pairs of {root} ({what}) -> {args.png}")
    return 0


@_user_files
def cmd_check(args: argparse.Namespace) -> int:
    """layout check: splits, pair counts, sizes, problem and non-image files

    Exit 2 when the folder cannot be trained on (problems listed by name).
    """
    from nectargan.dataset.layout import survey_layout

    survey = survey_layout(args.root)
    print("\n".join([f"dataset {args.root}", *survey.lines()]))
    if survey.ok:
        return 0
    print(f"nectargan data check: error: {len(survey.problems)} problem(s)", file=sys.stderr)
    return 2


@_user_files
def cmd_measures(args: argparse.Namespace) -> int:
    from nectargan.dataset.measures import MEASURES, measure_split
    from nectargan.dataset.pairs import list_pairs
    from nectargan.dataset.task import Task

    def report(task: Task) -> None:
        if task.done == task.total or task.done % 1024 == 0:
            print(f"{task.phase}: {task.done}/{task.total}", file=sys.stderr, flush=True)

    measure_split(args.root, args.split, Task(report))
    page = list_pairs(args.root, args.split, 0, args.top, args.sort, not args.ascending)
    print("name\t" + "\t".join(MEASURES))
    for item in page.items:
        m = item.get("measures")
        values = [f"{m[k]:g}" for k in MEASURES] if m else [item.get("error", "?")]
        print(item["name"] + "\t" + "\t".join(values))
    return 0


@_user_files
def cmd_exclude(args: argparse.Namespace) -> int:
    from nectargan.dataset.pairs import exclude_pair, restore_pair

    move = exclude_pair if args.data_command == "exclude" else restore_pair
    for name in args.names:
        print(f"{name} -> {move(args.root, args.split, name)}")
    return 0


def _add_download(sub: argparse._SubParsersAction) -> None:
    from nectargan.dataset.download import BASE_URL_ENV, DATASETS

    p = add_command(sub, "download", cmd_download)
    p.add_argument("name", metavar="NAME", help=f"one of: {', '.join(DATASETS)}")
    p.add_argument("--root", default="datasets", help="parent folder (default: %(default)s)")
    p.add_argument(
        "--url",
        metavar="BASE",
        help=f"base URL of the archives (default: ${BASE_URL_ENV} or the pix2pix site)",
    )
    p.add_argument("--force", action="store_true", help="download and unpack again")
    p.add_argument("--timeout", type=float, default=30.0, help="connect/read timeout, s")
    p.add_argument("--retries", type=int, default=5, help="attempts after a failed one")


def _add_preview(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "preview", cmd_preview)
    add_config_options(p)
    p.add_argument("--dataroot", metavar="DIR", help="dataset with train/ val/ test/")
    p.add_argument("--split", choices=("train", "val", "test"), default="train")
    p.add_argument("--n", type=int, default=8, help="number of pairs (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--columns",
        type=int,
        default=0,
        help="pairs per row, 1-16 (default: 0, enough to fill a wide screen)",
    )
    p.add_argument(
        "--output", dest="png", required=True, metavar="IMAGE", help="where to write the grid"
    )
    # The training flags config_from_args reads, left unset here.
    unset = ("epochs", "epochs_decay", "output", "name", "batch_size", "device", "precision")
    p.set_defaults(**dict.fromkeys((*unset, "visdom", "port", "env")))


def _ratios_arg(p: argparse.ArgumentParser, default: list[float]) -> None:
    p.add_argument(
        "--ratios",
        type=float,
        nargs=3,
        default=default,
        metavar=("TRAIN", "VAL", "TEST"),
        help="split fractions, summing to 1 (default: %(default)s)",
    )


def _dry_run_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run", action="store_true", help="check everything and say what would be written"
    )


def _add_synth(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "synth", cmd_synth)
    p.add_argument("out", help="output folder (gets train/ val/ test/)")
    p.add_argument("--n", type=int, default=1000, help="number of pairs (default: %(default)s)")
    p.add_argument("--size", type=int, default=64, help="side in pixels (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    _ratios_arg(p, [0.8, 0.1, 0.1])
    p.add_argument("--overwrite", action="store_true", help="replace images already in OUT")


def _add_pair(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "pair", cmd_pair)
    p.add_argument("a_dir", help="folder of A (input) images")
    p.add_argument("b_dir", help="folder of B (target) images")
    p.add_argument("out", help="output folder")
    p.add_argument("--resize", action="store_true", help="resize B to A's size when they differ")
    _dry_run_arg(p)


def _add_split(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "split", cmd_split)
    p.add_argument("src", help="folder of A|B images")
    p.add_argument("out", help="output folder (gets train/ val/ test/)")
    _ratios_arg(p, [0.8, 0.1, 0.1])
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default: %(default)s)")
    _dry_run_arg(p)


def _add_check(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "check", cmd_check)
    p.add_argument("root", help="dataset folder (with train/, val/, test/)")


def _add_measures(sub: argparse._SubParsersAction) -> None:
    from nectargan.dataset.measures import MEASURES
    from nectargan.dataset.pairs import SORTS

    p = add_command(
        sub,
        "measures",
        cmd_measures,
        help="measure every pair (cached) and list the most extreme by one measure",
        description="Measures: " + "; ".join(f"{k}: {v}" for k, v in MEASURES.items()) + ".",
    )
    p.add_argument("root", help="dataset folder")
    p.add_argument("--split", choices=("train", "val", "test"), default="train")
    p.add_argument("--sort", choices=SORTS, default="brightness", help="(default: %(default)s)")
    p.add_argument("--ascending", action="store_true", help="smallest first (default: largest)")
    p.add_argument("--top", type=int, default=20, help="how many to list (default: %(default)s)")


def _add_exclude(sub: argparse._SubParsersAction) -> None:
    for name, what in (
        ("exclude", "move pairs to ROOT/excluded/SPLIT/ (undo with restore)"),
        ("restore", "move excluded pairs back to ROOT/SPLIT/"),
    ):
        p = add_command(sub, name, cmd_exclude, help=what)
        p.add_argument("root", help="dataset folder")
        p.add_argument("names", nargs="+", metavar="NAME", help="file names in the split")
        p.add_argument("--split", choices=("train", "val", "test"), default="train")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `data` and its subcommands to a top-level CLI's subparsers."""
    data = subparsers.add_parser(
        "data", help="download, preview, create, pair and split paired datasets"
    )
    commands = "download,check,preview,measures,exclude,restore,synth,pair,split"
    sub = data.add_subparsers(dest="data_command", metavar=f"{{{commands}}}")
    for add in (
        _add_download,
        _add_check,
        _add_preview,
        _add_measures,
        _add_exclude,
        _add_synth,
        _add_pair,
        _add_split,
    ):
        add(sub)

    def show_help(_args: argparse.Namespace) -> int:
        data.print_help(sys.stderr)
        return 2

    data.set_defaults(func=show_help)
    return data
