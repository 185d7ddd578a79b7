"""The Utilities page through the test client: export a real tiny run with ``nectargan export``
as a child process and read its self-check, test the ONNX file on a folder with ``nectargan
infer --model`` and fetch the outputs by name; bad input refused with one clear line."""

from __future__ import annotations

import os
import shutil

import pytest
from _support import wait_for
from _toolbox import browser_client, make_root, toolbox_app

from nectargan.toolbox.child_jobs import failure_line
from nectargan.toolbox.utility_jobs import opset_range, self_check

pytestmark = pytest.mark.slow
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def box(tmp_path, tiny_experiment, dataroot):
    """A Toolbox whose output root holds a copy of the finished tiny run; the data is a root."""
    root = make_root(tmp_path)
    run = root / "output" / "tiny_v1"
    shutil.copytree(tiny_experiment, run)
    app = toolbox_app(tmp_path, roots=[root, dataroot])
    with browser_client(app) as client:
        yield client, root, run


def finished(client, job: dict, timeout: float = 240) -> dict:
    """Poll the job until its command has ended."""

    def ended():
        snap = client.get(f"/utilities/jobs/{job['id']}").json()
        return snap if snap["state"] != "running" else None

    return wait_for(ended, timeout, interval=0.3, what=f"job {job['id']}")


def test_export_runs_the_cli_and_shows_its_self_check(box):
    client, root, run = box
    page = client.get("/utilities")
    assert page.status_code == 200
    assert 'value="0/tiny_v1"' in page.text and "Ctrl+" not in page.text  # hints come from JS
    started = client.post("/utilities/export", json={"run": "0/tiny_v1", "epoch": "best"})
    assert started.status_code == 201, started.text
    assert started.json()["command"].startswith(f"nectargan export --experiment {run} --epoch best")
    snap = finished(client, started.json())
    assert snap["state"] == "done", snap["log"]
    check = snap["check"]
    assert 0 <= check["max_abs_diff"] < 1e-4
    assert check["checked"] and check["format"] == "onnx"
    assert (run / "export").is_dir() and check["path"].startswith(str(run / "export"))
    models = client.get("/utilities/models").json()["models"]
    assert [m["path"] for m in models] == [check["path"]]


def test_static_torchscript_export(box):
    client, _, run = box
    body = {"run": "0/tiny_v1", "epoch": "2", "format": "torchscript", "static": ["32", "48"]}
    snap = finished(client, client.post("/utilities/export", json=body).json())
    assert snap["state"] == "done", snap["log"]
    assert "--static 32 48" in snap["command"]
    assert snap["check"]["format"] == "torchscript" and snap["check"]["max_abs_diff"] < 1e-4


def test_infer_with_the_onnx_model_serves_outputs_by_name(box, tiny_onnx, dataroot):
    client, root, _ = box
    model = root / "models" / "tiny.onnx"
    model.parent.mkdir()
    shutil.copy(tiny_onnx, model)
    body = {"model": "models/tiny.onnx", "folder": str(dataroot / "test"), "paired": True}
    started = client.post("/utilities/infer", json=body)
    assert started.status_code == 201, started.text
    snap = finished(client, started.json())
    assert snap["state"] == "done", snap["log"]
    inputs = sorted(p.stem for p in (dataroot / "test").iterdir())
    assert [n.rsplit(".", 1)[0] for n in snap["images"]] == inputs
    image = client.get(f"/utilities/jobs/{snap['id']}/images/{snap['images'][0]}")
    assert image.status_code == 200 and image.content.startswith(PNG_MAGIC)
    for name in ("%2e%2e", "..%2foutput.log", "output.log", "nothere.png"):
        assert client.get(f"/utilities/jobs/{snap['id']}/images/{name}").status_code == 404


def test_a_failing_command_shows_its_own_one_line_error(box):
    client, _, _ = box
    snap = finished(
        client, client.post("/utilities/export", json={"run": "0/tiny_v1", "epoch": "9"}).json()
    )
    assert snap["state"] == "failed"
    assert snap["error"].startswith("nectargan export: error:") and "9" in snap["error"]
    assert "Traceback" not in "\n".join(snap["log"])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"run": "0/tiny_v1", "opset": "99"},
            400,
            "opset '99': expected a whole number {low}-{high}",
        ),
        ({"run": "0/tiny_v1", "opset": "x"}, 400, "opset 'x': expected a whole number"),
        ({"run": "0/tiny_v1", "epoch": "soon"}, 400, "epoch 'soon': expected best, latest or"),
        (
            {"run": "0/tiny_v1", "static": ["32"]},
            400,
            "static size ['32']: expected height and width",
        ),
        ({"run": "0/tiny_v1", "format": "tf"}, 400, "format 'tf': expected onnx or torchscript"),
        ({"run": "0/gone"}, 404, "run '0/gone': no run 'gone'"),
        ({"run": "0/../x"}, 404, "run '0/../x'"),
        ({"run": "nonsense"}, 400, "run 'nonsense': expected a run from the list"),
    ],
)
def test_bad_export_input_is_refused_with_one_line(box, body, status, message):
    client, _, _ = box
    low, high = opset_range()
    answer = client.post("/utilities/export", json=body)
    assert answer.status_code == status
    assert answer.json()["error"].startswith(message.format(low=low, high=high))


def test_a_deleted_run_says_so(box):
    client, _, run = box
    assert "tiny_v1" in client.get("/utilities").text  # the page was open with it
    shutil.rmtree(run)
    answer = client.post("/utilities/export", json={"run": "0/tiny_v1"})
    assert answer.status_code == 404
    assert "tiny_v1" in answer.json()["error"] and "deleted?" in answer.json()["error"]


def test_bad_infer_input_is_refused_by_name(box, tmp_path, dataroot):
    client, root, _ = box
    (root / "fake.onnx").write_bytes(b"x")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    cases = [
        ({"model": "/etc/passwd", "folder": str(dataroot)}, 403, "path '/etc/passwd' is outside"),
        ({"model": "fake.onnx", "folder": str(outside)}, 403, f"path '{outside}' is outside"),
        ({"model": "fake.onnx", "folder": "output/../.."}, 403, "folder 'output/../..': '..'"),
        ({"model": "config.json", "folder": "output"}, 400, "model 'config.json': expected"),
        (
            {"model": "fake.onnx", "folder": "nothere"},
            400,
            "folder 'nothere': expected an existing",
        ),
        ({"model": "fake.onnx", "folder": "output", "tile": "big"}, 400, "tile 'big': expected"),
    ]
    for body, status, message in cases:
        answer = client.post("/utilities/infer", json=body)
        assert (answer.status_code, answer.json()["error"][: len(message)]) == (status, message)
    assert not (tmp_path / "state" / "utility-jobs").exists()  # nothing was started


def test_unknown_job_is_a_json_404(box):
    client, _, _ = box
    answer = client.get("/utilities/jobs/export-1-99")
    assert answer.status_code == 404 and "no such job" in answer.json()["error"]


def test_self_check_and_failure_are_read_from_what_export_prints():
    log = (
        "exported /r/checkpoints/epoch_0002.pt -> /r/export/epoch_0002.onnx (onnx, opset 18)\n"
        "input [N, 3, H, W] float32 in [-1, 1], H and W: multiples of 16\n"
        "self-check: val (2, 3, 32, 32): 1.19e-07\n"
        "max abs difference vs torch: 1.19e-07\n"
    )
    check = self_check(log)
    assert check == {
        "checkpoint": "/r/checkpoints/epoch_0002.pt",
        "path": "/r/export/epoch_0002.onnx",
        "format": "onnx",
        "opset": 18,
        "max_abs_diff": 1.19e-07,
        "checked": ["val (2, 3, 32, 32): 1.19e-07"],
    }
    assert self_check("half a line") is None
    assert failure_line("loading\nnectargan export: error: --epoch 9: no such\n") == (
        "nectargan export: error: --epoch 9: no such"
    )
    assert failure_line("") == "it printed nothing"


def test_stop_ends_the_command_and_its_session(box):
    client, _, _ = box
    job = client.post("/utilities/export", json={"run": "0/tiny_v1", "format": "torchscript"})
    assert job.status_code == 201 and job.json()["state"] == "running"
    pid = job.json()["pid"]
    assert os.getsid(pid) == pid  # a session of its own: Ctrl-C of the Toolbox misses it
    client.post(f"/utilities/jobs/{job.json()['id']}/stop")
    snap = finished(client, job.json(), timeout=60)
    assert snap["state"] == "stopped" and snap["exit_code"] != 0
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # nothing of its session is left
