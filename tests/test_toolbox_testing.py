"""The Testing page's routes: `nectargan test` and `nectargan infer` as children of the
Toolbox on a tiny finished run, the results read back, and hostile uploads refused."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from _support import wait_for
from _toolbox import TOKEN, api_client, browser_client, make_root, toolbox_app
from PIL import Image

from nectargan.toolbox import uploads

pytestmark = pytest.mark.slow


@pytest.fixture
def box(tmp_path, tiny_experiment):
    """A Toolbox whose output root holds a copy of the tiny finished run."""
    root = make_root(tmp_path)
    run = root / "output" / tiny_experiment.name
    shutil.copytree(tiny_experiment, run, ignore=shutil.ignore_patterns("test", ".nectargan.lock"))
    app = toolbox_app(tmp_path, roots=[root])
    return app, run


def png_bytes(side: int = 32, color=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), color).save(out, format="PNG")
    return out.getvalue()


def finished(client, job: dict, timeout: float = 180) -> dict:
    def poll():
        state = client.get(f"/api/testing/jobs/{job['id']}").json()
        return state if state["state"] != "running" else None

    return wait_for(poll, timeout, what=f"{job['kind']} job {job['id']}")


def test_test_runs_the_cli_and_its_results_read_back(box):
    app, run = box
    client = api_client(app)
    base = f"/api/testing/runs/0/{run.name}"
    info = client.get(base).json()
    assert info["epochs"] and info["results"] == []
    answer = client.post(f"{base}/test", json={"epoch": "latest", "split": "test"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["total"] == 4  # the tiny dataset's test split
    done = finished(client, answer.json())
    assert done["state"] == "done", done
    assert done["written"] == 4
    written = json.loads((run / "test" / done["result"] / "metrics.json").read_text())

    listed = client.get(base).json()["results"]
    assert [r["name"] for r in listed] == [done["result"]]
    detail = client.get(f"{base}/results/{done['result']}").json()
    assert detail["metrics"] == written["metrics"]
    assert sorted(r["image"] for r in detail["rows"]) == sorted(
        r["image"] for r in written["per_image"]
    )
    for row in detail["rows"]:
        image = client.get(f"/runs/0/{run.name}/file/{row['file']}")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(image.content)).width == 3 * 32  # input | output | target


def test_test_refuses_a_bad_epoch_and_split_by_value(box):
    app, run = box
    client = api_client(app)
    base = f"/api/testing/runs/0/{run.name}/test"
    answer = client.post(base, json={"epoch": "soon"})
    assert answer.status_code == 400
    assert (
        answer.json()["error"] == "epoch: expected best, latest or a number of epochs, got 'soon'"
    )
    answer = client.post(base, json={"split": "../x"})
    assert answer.status_code == 400 and "'../x'" in answer.json()["error"]


def test_a_missing_checkpoint_epoch_ends_as_the_cli_error(box):
    app, run = box
    client = api_client(app)
    answer = client.post(f"/api/testing/runs/0/{run.name}/test", json={"epoch": "77"})
    done = finished(client, answer.json())
    assert done["state"] == "failed"
    assert "nectargan test: error:" in done["error"] and "77" in done["error"]


def test_a_deleted_run_answers_a_message_not_a_traceback(box):
    app, run = box
    client = browser_client(app)
    assert client.get("/testing").status_code == 200
    shutil.rmtree(run)
    answer = client.get(f"/api/testing/runs/0/{run.name}")
    assert answer.status_code == 404
    assert answer.json() == {"error": f"no run {run.name!r} in {run.parent}"}
    page = client.get("/testing")
    assert page.status_code == 200 and "Traceback" not in page.text


def test_upload_then_infer_then_zip(box):
    app, run = box
    client = browser_client(app)
    first = client.put("/api/testing/uploads?name=red.png", content=png_bytes())
    assert first.status_code == 200, first.text
    batch = first.json()["batch"]
    second = client.put(f"/api/testing/uploads?name=blue.jpg&batch={batch}", content=jpeg_bytes())
    assert second.json() == {"batch": batch, "name": "blue.jpg", "width": 40, "height": 24}
    answer = client.post(
        "/api/testing/infer", json={"root": 0, "name": run.name, "epoch": "best", "batch": batch}
    )
    assert answer.status_code == 202, answer.text
    done = finished(client, answer.json())
    assert done["state"] == "done", done
    assert done["outputs"] == ["blue.png", "red.png"]
    out = client.get(f"/api/testing/infer/{done['id']}/out/blue.png")
    assert Image.open(io.BytesIO(out.content)).size == (40, 24)  # the input's own size
    assert client.get(f"/api/testing/infer/{done['id']}/in/red.png").status_code == 200
    assert client.get(f"/api/testing/infer/{done['id']}/out/..%2Fx.png").status_code == 404
    import zipfile

    archive = zipfile.ZipFile(
        io.BytesIO(client.get(f"/api/testing/infer/{done['id']}/zip").content)
    )
    assert sorted(archive.namelist()) == ["blue.png", "red.png"]


def test_infer_on_a_folder_outside_the_roots_is_refused(box, tmp_path):
    app, run = box
    client = api_client(app)
    answer = client.post(
        "/api/testing/infer", json={"root": 0, "name": run.name, "folder": str(tmp_path)}
    )
    assert answer.status_code == 400
    assert "is outside the Toolbox's roots" in answer.json()["error"]


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 24), (20, 40, 200)).save(out, format="JPEG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "body", "expected"),
    [
        ("../evil.png", b"x", "upload '../evil.png': expected a single file name"),
        ("notes.txt", b"hello", "upload 'notes.txt': not an image name"),
        ("fake.png", b"this is not a png", "upload 'fake.png': not a readable image"),
    ],
)
def test_hostile_uploads_are_refused_by_name(box, tmp_path, name, body, expected):
    app, _ = box
    client = api_client(app)
    answer = client.put(f"/api/testing/uploads?name={name}", content=body)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(expected)
    kept = list((tmp_path / "state").rglob("*.png")) + list((tmp_path / "state").rglob("*.txt"))
    assert kept == []


def test_a_declared_2gb_upload_is_refused_before_reading(box):
    app, _ = box
    client = api_client(app)
    answer = client.put(
        "/api/testing/uploads?name=big.png",
        content=b"",
        headers={"Content-Length": str(2 * 1024**3)},
    )
    assert answer.status_code == 413 and "big.png" in answer.json()["error"]


def test_a_streamed_2gb_upload_stops_being_read_early(box, tmp_path):
    """No Content-Length: the server counts the stream and stops at the limit."""
    app, _ = box
    chunk, total = 1024 * 1024, 2 * 1024
    sent = {"chunks": 0}
    answers: list[dict] = []

    async def receive():
        if sent["chunks"] >= total:
            return {"type": "http.request", "body": b"", "more_body": False}
        sent["chunks"] += 1
        return {"type": "http.request", "body": b"\0" * chunk, "more_body": True}

    async def send(message):
        answers.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": "/api/testing/uploads",
        "raw_path": b"/api/testing/uploads",
        "root_path": "",
        "query_string": b"name=big.png",
        "headers": [
            (b"host", b"127.0.0.1:8765"),
            (b"authorization", f"token {TOKEN}".encode()),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8765),
    }
    started = time.monotonic()
    # its own thread: a session's Playwright keeps an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    assert answers[0]["status"] == 413
    assert b"big.png" in answers[1]["body"]
    limit_chunks = uploads.MAX_UPLOAD_BYTES // chunk
    assert sent["chunks"] <= limit_chunks + 1 < total // 10  # stopped at the limit, not 2 GB
    assert list((tmp_path / "state").rglob("big.png")) == []
    assert time.monotonic() - started < 60
