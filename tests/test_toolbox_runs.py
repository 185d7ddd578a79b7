"""The Toolbox controls real training runs: start, watch, stop, resume, restart, queue.

Each run is a real ``nectargan train`` child on the tiny synthetic set (seconds).
The Toolbox itself runs as a real process, as a user starts it, so a restart is
a real restart.
"""

from __future__ import annotations

import json
import signal

import pytest
from _support import tiny_training_config, wait_for
from _toolbox import ToolboxProcess, make_root

from nectargan.toolbox.launcher import process_alive, signal_run

pytestmark = pytest.mark.slow


def tiny(root, dataroot, name: str, epochs: int) -> dict:
    return tiny_training_config(
        root / "output",
        dataroot,
        name,
        dataloader={"synthetic": {"n": 40, "size": 32}},
        train={"epochs": epochs, "epochs_decay": 0},
    )


@pytest.fixture
def root(tmp_path, dataroot):
    """The Toolbox's roots: its folder, plus the shared dataset's (read-only use)."""
    return make_root(tmp_path)


def start_toolbox(tmp_path, root, dataroot, name="toolbox") -> ToolboxProcess:
    return ToolboxProcess(root, tmp_path / "state", tmp_path / f"{name}.log", [dataroot])


def run_info(box: ToolboxProcess, name: str) -> dict | None:
    runs = box.client.get("/api/runs").json()["runs"]
    return next((r for r in runs if r["name"] == name), None)


def test_restarted_toolbox_finds_the_run_going_and_stops_it(tmp_path, root, dataroot):
    first = start_toolbox(tmp_path, root, dataroot, "first")
    pid = None
    try:
        started = first.client.post("/api/runs", json={"config": tiny(root, dataroot, "long", 500)})
        assert started.status_code == 201, started.text
        pid = started.json()["launch"]["pid"]
        detail = wait_for(
            lambda: (d := run_detail(first, "long_v1")) and d["examples"] and d["epoch"] >= 1 and d,
            120,
            what="the run's first epoch with its examples, seen by the Toolbox",
        )
        assert detail["running"] and detail["losses"] and detail["epoch"] >= 1
        run = detail["summary"]
        assert run["state"] == "running" and run["pid"] == pid
        # the page shows the log's newest lines as they are read; the whole log is on disk
        train_log = root / "output" / "long_v1" / "train.log"
        wait_for(
            lambda: train_log.exists() and "experiment:" in train_log.read_text(),
            60,
            what="the run's log",
        )
        second_start = first.client.post("/api/runs/0/long_v1/resume")
        assert second_start.status_code == 409 and f"pid {pid}" in second_start.json()["error"]
    except BaseException:
        stop_if_alive(pid)
        raise
    finally:
        said = first.stop()
    assert f"still training: pid {pid}" in said and "keep going" in said
    assert process_alive(pid), "stopping the Toolbox must not stop its run"
    exp = root / "output" / "long_v1"
    assert (exp / "train.log").is_file()

    second = start_toolbox(tmp_path, root, dataroot, "second")
    try:
        seen = run_info(second, "long_v1")
        assert seen["state"] == "running" and seen["pid"] == pid
        stranger = second.client.post(
            "/api/runs/0/long_v1/stop", headers={"Authorization": "token nope"}
        )
        assert stranger.status_code == 401 and process_alive(pid)
        stopped = second.client.post("/api/runs/0/long_v1/stop")
        assert stopped.status_code == 200 and stopped.json()["stopped"] == pid
        wait_for(lambda: not process_alive(pid), 60, what="the run to stop")
        assert (exp / "checkpoints" / "interrupted.pt").is_file()
        ended = wait_for(lambda: (r := run_info(second, "long_v1"))["state"] != "running" and r, 10)
        assert ended["state"] == "interrupted", ended
        # its data-loader workers may hold the lock a moment longer than the run itself
        again = wait_for(
            lambda: (a := second.client.post("/api/runs/0/long_v1/stop")).status_code == 409 and a,
            30,
            what="the lock let go",
        )
        assert "not running" in again.json()["error"]
    finally:
        second.stop()
        stop_if_alive(pid)


def test_three_queued_runs_one_after_another_survive_a_restart(tmp_path, root, dataroot):
    form = tmp_path / "root" / "form.json"
    first = start_toolbox(tmp_path, root, dataroot, "first")
    try:
        ids = []
        for name in ("q1", "q2", "q3"):
            form.write_text(json.dumps(tiny(root, dataroot, name, 2)))
            answer = first.client.post("/api/queue", json={"config_file": str(form)})
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["entry"]["id"])
        form.write_text(json.dumps(tiny(root, dataroot, "edited", 7)))  # an edit after queuing
        cancelled = first.client.post(f"/api/queue/{ids[2]}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["entry"]["state"] == "cancelled"
        wait_for(lambda: entries(first)[0]["state"] == "running", 30, what="q1 to start")
        assert entries(first)[1]["state"] == "queued"  # one at a time
    finally:
        first.stop()

    second = start_toolbox(tmp_path, root, dataroot, "second")
    try:
        assert [e["id"] for e in entries(second)] == ids  # the queue outlived the restart
        assert [e["state"] for e in entries(second)][1:] in (
            ["queued", "cancelled"],
            ["running", "cancelled"],
        )
        overlap = []

        def all_ended() -> bool:
            states = [e["state"] for e in entries(second)]
            overlap.append(states.count("running"))
            return states == ["ended", "ended", "cancelled"]

        wait_for(all_ended, 240, interval=0.3, what="q1 and q2 to run")
        assert max(overlap) <= 1
        q1, q2, q3 = entries(second)
        assert q1["ended"] <= q2["started"]
        assert not (root / "output" / "q3_v1").exists() and q3["started"] is None
        assert not list((root / "output").glob("edited_v*"))
        for name in ("q1_v1", "q2_v1"):
            config = json.loads((root / "output" / name / "config.json").read_text())
            assert config["train"]["epochs"] == 2  # the snapshot, not the edited file
            assert (root / "output" / name / "checkpoints" / "epoch_0002.pt").is_file()
    finally:
        second.stop()


def run_detail(box: ToolboxProcess, name: str) -> dict | None:
    answer = box.client.get(f"/api/runs/0/{name}")
    return answer.json() if answer.status_code == 200 else None


def stop_if_alive(pid: int | None) -> None:
    """A failed test must not leave a 500-epoch run behind."""
    if pid and process_alive(pid):
        signal_run(pid, signal.SIGKILL)


def entries(box: ToolboxProcess) -> list[dict]:
    return box.client.get("/api/queue").json()["entries"]


def test_the_api_refuses_a_start_without_the_token(tmp_path, root, dataroot):
    box = start_toolbox(tmp_path, root, dataroot)
    try:
        config = {"config": tiny(root, dataroot, "nope", 1)}
        bare = box.client.post("/api/runs", json=config, headers={"Authorization": ""})
        assert bare.status_code == 401
        assert box.client.get("/api/runs").json()["runs"] == []
    finally:
        box.stop()
