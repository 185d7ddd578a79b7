"""Page jobs (test, infer, export) kept on disk: a new Toolbox lists them, follows or stops
the ones still running, judges the ones that ended while it was down, and deletes old ones
(with their uploads) without touching a running job's files or anything outside its folders.

The jobs are real ``nectargan`` commands. A job is held "still running" by SIGSTOP (a
stopped process is alive, so the test decides when it may go on), never by sleeping.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
from _support import wait_for
from _toolbox import ToolboxProcess, make_root

from nectargan.toolbox.child_jobs import (
    FAILED,
    RUNNING,
    UPLOAD_TTL_S,
    ChildJobs,
    JobBusy,
    remove_tree,
)
from nectargan.toolbox.children import process_alive, spawn
from nectargan.toolbox.launcher import Launcher

pytestmark = pytest.mark.slow  # real child processes (a few seconds each here)
QUICK = ["config", "show"]  # a real command that ends in a few seconds, exit 0


def store(tmp_path, page="testing", keep=30) -> ChildJobs:
    state = tmp_path / "state"
    return ChildJobs(state, sys.executable, tmp_path, page, uploads=state / "uploads", keep=keep)


def ended(jobs: ChildJobs, job_id: str, timeout: float = 120):
    return wait_for(
        lambda: (j := jobs.get(job_id)) and j.state != RUNNING and j, timeout, what=job_id
    )


def held(pid: int) -> None:
    """Keep a job's whole session stopped (alive, doing nothing) until SIGCONT."""
    os.killpg(pid, signal.SIGSTOP)


def kill_session(pid: int | None) -> None:
    if pid and process_alive(pid):
        os.killpg(pid, signal.SIGKILL)


def test_a_record_is_read_back_by_a_new_store(tmp_path):
    first = store(tmp_path)
    job = first.start("config", "show the config", QUICK, note="kept")
    done = ended(first, job.id)
    assert done.state == "done" and done.exit_code == 0
    record = json.loads((done.folder / "job.json").read_text())
    assert record["state"] == "done" and record["args"] == QUICK

    again = store(tmp_path).get(job.id)  # what a restarted Toolbox reads
    assert again.state == "done" and again.meta == {"note": "kept"}
    assert "common" in again.read_log()  # the command's own output, kept in the job's folder
    assert store(tmp_path, page="utilities").get(job.id) is None  # each page lists its own


def test_a_reused_pid_is_not_taken_for_the_job(tmp_path):
    """A record naming a live pid with another start time: that process is someone else."""
    folder = tmp_path / "state" / "jobs" / "0123456789ab"
    folder.mkdir(parents=True)
    (folder / "output.log").write_text("loading\nnectargan infer: error: out of memory\n")
    record = {"id": folder.name, "page": "testing", "kind": "infer", "label": "x", "args": []}
    record.update(started=1.0, state="running", pid=os.getpid(), proc_start="1")
    (folder / "job.json").write_text(json.dumps(record))
    job = store(tmp_path).get(folder.name)
    assert job.state == FAILED and job.exit_code is None
    assert job.error.endswith("nectargan infer: error: out of memory")
    assert json.loads((folder / "job.json").read_text())["state"] == FAILED  # written back


def test_old_jobs_go_oldest_first_but_never_a_running_one(tmp_path):
    jobs = store(tmp_path, keep=2)
    running = jobs.start("config", "held", QUICK)
    held(running.pid)
    try:
        finished = []
        for n in range(4):
            job = jobs.start("config", f"quick {n}", QUICK)
            finished.append(ended(jobs, job.id))
            time.sleep(0.01)  # distinct start times order them
        jobs.prune()
        kept = [j.id for j in jobs.list()]
        assert kept == [finished[3].id, finished[2].id, running.id]
        assert not finished[0].folder.exists() and not finished[1].folder.exists()
        assert running.folder.is_dir() and (running.folder / "output.log").is_file()
        with pytest.raises(JobBusy, match="running; stop it first"):
            jobs.delete(running)
        jobs.stop(running)  # SIGTERM, then SIGCONT so the stopped job acts on it
        assert ended(jobs, running.id).state == "stopped"
        assert not process_alive(running.pid)
    finally:
        kill_session(running.pid)


def test_delete_takes_the_jobs_upload_but_not_a_shared_one_nor_a_fresh_stray(tmp_path):
    jobs = store(tmp_path)
    uploads = tmp_path / "state" / "uploads"
    for batch in ("aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"):
        (uploads / batch).mkdir(parents=True)
        (uploads / batch / "x.png").write_bytes(b"x")
    first = ended(jobs, jobs.start("config", "a", QUICK, batch="aaaaaaaaaaaa").id)
    second = ended(jobs, jobs.start("config", "b", QUICK, batch="bbbbbbbbbbbb").id)
    third = ended(jobs, jobs.start("config", "b again", QUICK, batch="bbbbbbbbbbbb").id)
    old = time.time() - UPLOAD_TTL_S - 60
    os.utime(uploads / "cccccccccccc", (old, old))  # a stray upload a day old: goes

    jobs.delete(first)
    assert not first.folder.exists() and not (uploads / "aaaaaaaaaaaa").exists()
    jobs.delete(second)
    assert (uploads / "bbbbbbbbbbbb").is_dir()  # the third job still reads it
    jobs.delete(third)
    assert not (uploads / "bbbbbbbbbbbb").exists()
    jobs.prune()
    assert not (uploads / "cccccccccccc").exists()
    assert (uploads / "dddddddddddd").is_dir()  # fresh: a page may be about to use it


def test_deleting_never_leaves_the_jobs_folders(tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    base = tmp_path / "state" / "jobs"
    base.mkdir(parents=True)
    link = base / "0123456789ab"
    link.symlink_to(outside)
    remove_tree(link, base)  # a link in the jobs folder: not followed
    remove_tree(outside, base)  # a folder elsewhere: not ours
    assert (outside / "keep.txt").is_file()
    # a record whose folder is a link out of the jobs folder is not loaded, so never deleted
    record = {"id": "0123456789ab", "page": "testing", "kind": "test", "label": "x"}
    record.update(args=[], started=1.0, state="done")
    (outside / "job.json").write_text(json.dumps(record))
    assert store(tmp_path).list() == []


def test_train_runs_and_jobs_start_through_one_function(tmp_path):
    """The launcher starts training runs with the same spawn() as the jobs: own session."""
    import inspect

    assert "spawn(" in inspect.getsource(Launcher._spawn)
    proc = spawn(sys.executable, QUICK, tmp_path / "log" / "x.log", tmp_path, header="--- hi")
    try:
        assert os.getsid(proc.pid) == proc.pid
    finally:
        proc.wait(60)
    assert (tmp_path / "log" / "x.log").read_text().startswith("--- hi\n")


# -- a real Toolbox, restarted -------------------------------------------------------------------


def live_in_group(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that still run (an orphan's zombie does not count: in a
    container whose init does not reap, it stays listed)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found


def start_infer(box: ToolboxProcess, model, folder) -> dict:
    answer = box.client.post(
        "/utilities/infer", json={"model": str(model), "folder": str(folder), "paired": True}
    )
    assert answer.status_code == 201, answer.text
    held(answer.json()["pid"])
    return answer.json()


def job_list(box: ToolboxProcess) -> dict[str, dict]:
    return {j["id"]: j for j in box.client.get("/utilities/jobs").json()["jobs"]}


def test_a_restarted_toolbox_loses_no_job(tmp_path, tiny_onnx, dataroot):
    root = make_root(tmp_path)
    model = root / "tiny.onnx"
    shutil.copy(tiny_onnx, model)
    state = tmp_path / "state"
    first = ToolboxProcess(root, state, tmp_path / "first.log", [dataroot])
    pids: list[int] = []
    try:
        going, finishing, dying = (start_infer(first, model, dataroot / "test") for _ in range(3))
        pids = [going["pid"], finishing["pid"], dying["pid"]]
    finally:
        first.stop()
    try:
        os.killpg(finishing["pid"], signal.SIGCONT)  # ends while no Toolbox watches it
        os.killpg(dying["pid"], signal.SIGKILL)  # dies without a result
        wait_for(lambda: not process_alive(finishing["pid"]), 120, what="the job to end")

        second = ToolboxProcess(root, state, tmp_path / "second.log", [dataroot])
        try:
            jobs = job_list(second)
            assert jobs[going["id"]]["state"] == "running"
            assert jobs[going["id"]]["pid"] == going["pid"]
            done = jobs[finishing["id"]]
            assert done["state"] == "done", done
            assert len(done["images"]) == len(list((dataroot / "test").iterdir()))
            image = second.client.get(f"/utilities/jobs/{done['id']}/images/{done['images'][0]}")
            assert image.status_code == 200
            failed = jobs[dying["id"]]
            assert failed["state"] == FAILED and "ended without a result" in failed["error"]
            assert isinstance(failed["log"], list)

            stopped = second.client.post(f"/utilities/jobs/{going['id']}/stop")
            assert stopped.status_code == 200
            wait_for(lambda: not process_alive(going["pid"]), 60, what="the held job to stop")
            after = wait_for(
                lambda: (j := job_list(second)[going["id"]])["state"] != "running" and j, 10
            )
            assert after["state"] == "stopped"
            assert live_in_group(going["pid"]) == []  # nothing of its session is left

            busy_free = second.client.post(f"/utilities/jobs/{done['id']}/delete")
            assert busy_free.status_code == 200
            assert not (state / "jobs" / done["id"]).exists()
            assert done["id"] not in job_list(second)
        finally:
            second.stop()
    finally:
        for pid in pids:
            kill_session(pid)


def test_a_stopping_toolbox_names_the_page_jobs_it_leaves_running(tmp_path):
    """Read from the records (pages not opened in this Toolbox count): alive with its own
    start time is running; a reused pid or an ended job is not named."""
    from nectargan.toolbox.children import process_start_time
    from nectargan.toolbox.context import ToolboxOptions
    from nectargan.toolbox.serve import tell_running_jobs

    me, start = os.getpid(), process_start_time(os.getpid())
    for job_id, state, proc_start in (
        ("0123456789ab", "running", start),
        ("0123456789ac", "running", "1"),
        ("0123456789ad", "done", start),
    ):
        folder = tmp_path / "state" / "jobs" / job_id
        folder.mkdir(parents=True)
        record = {"id": job_id, "page": "utilities", "kind": "export", "label": job_id}
        record.update(args=[], started=1.0, state=state, pid=me, proc_start=proc_start)
        (folder / "job.json").write_text(json.dumps(record))
    out = io.StringIO()
    tell_running_jobs(ToolboxOptions(roots=[tmp_path], state_dir=tmp_path / "state"), out)
    said = out.getvalue()
    assert f"still running: export pid {me} (0123456789ab)" in said
    assert "0123456789ac" not in said and "0123456789ad" not in said
    assert f"--state-dir {tmp_path / 'state'}" in said and "Utilities" in said
    out = io.StringIO()
    tell_running_jobs(ToolboxOptions(roots=[tmp_path], state_dir=tmp_path / "empty"), out)
    assert out.getvalue() == ""
