"""num_workers=-1: worker counts follow the measured step and item times."""

from __future__ import annotations

import io
import time

import pytest
import torch

from nectargan.dataset import PairedDataset
from nectargan.trainers.data import make_loader
from nectargan.trainers.loader_sizing import AutoSizedLoader, workers_needed

DL = {"batch_size": 2, "num_workers": -1, "pin_memory": "auto"}


def test_cuda_feeds_a_fast_step_with_enough_workers():
    # 10 ms per item, batch 4 = 40 ms of loading per 5 ms step: 12 workers with headroom.
    assert workers_needed(0.010, 4, 0.005, cores=16, cuda=True) == 12
    assert workers_needed(0.010, 4, 0.005, cores=8, cuda=True) == 7  # one core for the step
    assert workers_needed(0.001, 1, 0.100, cores=16, cuda=True) == 1
    assert workers_needed(0.010, 4, 0.005, cores=1, cuda=True) == 0


def test_cpu_keeps_loading_in_process_when_it_is_cheap():
    # A 400 ms CPU step and 4 ms items: moving loading out would cost more than it saves.
    assert workers_needed(0.004, 1, 0.400, cores=2, cuda=False) == 0
    assert workers_needed(0.004, 1, 0.400, cores=16, cuda=False) == 0
    # Loading as slow as the step: workers, at most half the cores.
    assert workers_needed(0.100, 4, 0.100, cores=16, cuda=False) == 6
    assert workers_needed(0.100, 4, 0.100, cores=4, cuda=False) == 2


# The pretend 8-core GPU machine gets 7 workers; torch warns that this one has 2 cores.
@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
def test_auto_loader_measures_steps_and_resizes_between_epochs(dataroot):
    ds = PairedDataset(dataroot, "train", load_size=32, crop_size=32)
    loader = make_loader(ds, DL, torch.device("cpu"), train=True)
    assert isinstance(loader, AutoSizedLoader)
    assert loader.item_seconds > 0 and loader.dataset is ds and len(loader) == len(ds) // 2
    loader.stream = io.StringIO()
    batches, body = 0, 0.0
    for x, _ in loader:
        start = time.perf_counter()
        batches += 1
        for _ in range(20):
            (x @ x.transpose(-1, -2)).sum()  # some work between batches: the "step"
        body += time.perf_counter() - start
    # The step time is what the loop spent between batches: at least its own body.
    assert batches == len(loader) and loader.step_seconds >= body / batches
    # Pretend the device is a fast GPU: the pool grows, and says so.
    loader.cuda, loader.cores, loader.step_seconds = True, 8, loader.item_seconds / 100
    loader.resize()
    assert loader.num_workers == 7
    assert "7 worker(s) from now on" in loader.stream.getvalue()


def test_probe_does_not_shift_the_training_random_stream(dataroot):
    ds = PairedDataset(dataroot, "train", load_size=40, crop_size=32)
    torch.manual_seed(5)
    make_loader(ds, DL, torch.device("cpu"), train=True)
    after = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(3))


def test_fixed_counts_and_evaluation_loaders_are_plain(dataroot):
    ds = PairedDataset(dataroot, "val", load_size=32, crop_size=32)
    assert not isinstance(make_loader(ds, DL, torch.device("cpu"), train=False), AutoSizedLoader)
    fixed = make_loader(ds, {**DL, "num_workers": 0}, torch.device("cpu"), train=True)
    assert fixed.num_workers == 0 and not isinstance(fixed, AutoSizedLoader)
