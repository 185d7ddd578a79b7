"""Following a run cheaply: what a Run page's stream reads and serialises each second.

A running run appends to ``train.log`` every second; that must not rebuild the loss
curves or the run's summary, and the stream must send the same JSON text as one
``json.dumps`` of the whole payload would. Changes that hide inside one coarse file
timestamp must still be seen.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from _toolbox import make_root, write_experiment

from nectargan.losses.loss_log import LossLog
from nectargan.runs.status import StatusWriter
from nectargan.toolbox.context import Toolbox, ToolboxOptions
from nectargan.toolbox.run_watch import RunWatch
from nectargan.toolbox.runs_index import FULL_CHECK_EVERY
from nectargan.toolbox.sse import JsonParts


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def test_json_parts_gives_json_dumps_text_and_serialises_only_new_parts():
    curves = {"G_L1": {"x": [1, 2], "y": [0.5, None]}}
    rows = [{"epoch": 1, "l1": 0.3}, {"epoch": 2, "l1": 0.2}]
    parts = JsonParts()
    first = {"losses": curves, "runs": rows, "log": ["a é"], "n": 1}
    assert parts.dumps(first) == _dumps(first)
    rows2 = [rows[0], {"epoch": 3, "l1": float("1e-9")}]
    second = {"losses": curves, "runs": rows2, "log": ["a é", "b"], "n": 2}
    assert parts.dumps(second) == _dumps(second)
    # the same objects are not serialised again: a reused text is what was cached
    parts._values["losses"] = (curves, '"cached"')
    assert parts.dumps({**second, "log": []}).startswith('{"losses":"cached"')
    assert parts.dumps({"losses": dict(curves)}) == _dumps({"losses": curves})  # new object
    assert parts.dumps([1, 2]) == "[1,2]" and parts.dumps({1: 2}) == '{"1":2}'


def _live_run(tmp_path: Path) -> tuple[Path, int]:
    """An experiment whose lock this test holds, as a training run would."""
    exp = write_experiment(make_root(tmp_path) / "output", "live_v1", epochs_done=1, total=5)
    lock = os.open(exp / ".nectargan.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    os.pwrite(lock, f"{os.getpid()}\n".encode(), 0)
    writer = StatusWriter(exp)
    writer.start(0, 5)
    writer.progress(1)
    log = LossLog(exp)
    log.describe_loss("G_L1", {"tags": ["G"], "weight": 1.0, "schedule": None})
    cols = {"epoch": [0.0, 0.5], "step": [0, 1], "raw": [1.0, 0.5], "weight": [1.0, 1.0]}
    log.write_segment({"G_L1": cols})
    log.write_index()
    (exp / "train.log").write_text("")  # a run's log is there from its start
    return exp, lock


def _age(exp: Path, seconds: float = 30.0) -> None:
    """Every file and folder of ``exp`` last changed ``seconds`` ago (past the racy window)."""
    then = time.time_ns() - int(seconds * 1e9)
    for path in [exp, *exp.rglob("*")]:
        os.utime(path, ns=(then, then))


def test_a_growing_log_reads_only_the_new_lines(tmp_path):
    exp, lock = _live_run(tmp_path)
    try:
        _age(exp)
        watch = RunWatch(exp)
        first = watch.read()
        assert first["running"] is True and first["pid"] == os.getpid()
        assert first["losses"]["G_L1"]["y"] == [1.0, 0.5]
        assert watch.read() is first  # nothing changed: the same object
        with open(exp / "train.log", "a") as log:
            log.write("epoch 2/5 [#...] 3/10 4.0 it/s ETA 0:02\n")
        second = watch.read()
        assert second["log"] == ["epoch 2/5 [#...] 3/10 4.0 it/s ETA 0:02"]
        assert second["its"] == 4.0 and second["iteration"] == "3/10"
        for unchanged in ("losses", "val", "best", "checkpoints", "examples", "status"):
            assert second[unchanged] is first[unchanged], unchanged
    finally:
        os.close(lock)


def test_a_new_epoch_hidden_in_one_folder_timestamp_is_still_seen(tmp_path):
    """A folder's mtime has a coarse clock: two changes in one tick leave it equal."""
    exp, lock = _live_run(tmp_path)
    try:
        examples = exp / "examples"
        watch = RunWatch(exp)
        assert watch.read()["examples"]["epoch"] == 1
        stamp = examples.stat().st_mtime_ns
        (examples / "epoch_0002_0.png").write_bytes(b"png")
        os.utime(examples, ns=(stamp, stamp))  # the second change in the same tick
        assert watch.read()["examples"]["epoch"] == 2
    finally:
        os.close(lock)


def test_runs_index_updates_only_the_activity_of_a_run_whose_log_grew(tmp_path):
    exp, lock = _live_run(tmp_path)
    try:
        _age(exp)
        root = exp.parent.parent.parent
        box = Toolbox(ToolboxOptions(roots=[root], state_dir=tmp_path / "state", background=False))
        before = box.runs.summary(0, exp)
        assert before.state == "running" and box.runs.summary(0, exp) is before
        with open(exp / "train.log", "a") as log:
            log.write("more\n")
        after = box.runs.summary(0, exp)
        assert after.last_activity > before.last_activity
        assert after.best is before.best  # not read again
        assert after.to_json() == {**before.to_json(), "last_activity": after.last_activity}
    finally:
        os.close(lock)
    crashed = box.runs.summary(0, exp)  # the lock let go with no record: seen at once
    assert crashed.state == "crashed" and crashed.pid is None


def test_a_run_that_is_not_running_is_looked_at_through_its_sentinels(tmp_path):
    exp = write_experiment(make_root(tmp_path) / "output", "done_v1", epochs_done=2, total=3)
    _age(exp)
    root = exp.parent.parent
    box = Toolbox(ToolboxOptions(roots=[root], state_dir=tmp_path / "state", background=False))
    (first,) = box.runs.list()
    assert first.state != "running" and first.total_epochs == 3
    # edited by hand, in place, keeping its mtime: only a full look sees it, and one comes
    config = exp / "config.json"
    stamp = config.stat().st_mtime_ns
    config.write_text(json.dumps({"train": {"epochs": 7, "epochs_decay": 0}}))
    os.utime(config, ns=(stamp - 10**9, stamp - 10**9))
    seen = [box.runs.list()[0].total_epochs for _ in range(FULL_CHECK_EVERY)]
    assert seen[0] == 3 and seen[-1] == 7
    # a run starting in it takes the lock, which writes its pid: seen at the next look
    lock = os.open(exp / ".nectargan.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.pwrite(lock, f"{os.getpid()}\n".encode(), 0)
        (running,) = box.runs.list()
        assert running.state == "running" and running.pid == os.getpid()
    finally:
        os.close(lock)
