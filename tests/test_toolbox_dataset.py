"""The Toolbox's Dataset page: routes (confined, same code as `nectargan data`), jobs, browser."""

from __future__ import annotations

import os
import shutil
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from _support import wait_for
from _toolbox import BASE, ToolboxProcess, browser_client, toolbox_app
from PIL import Image
from starlette.testclient import TestClient
from test_dataset_browser import ten_thousand_pairs
from test_download import NAME, Served, build_archive, good_entries, make_handler, serve

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def pair_image(path: Path, left: int, right: int, size: tuple[int, int] = (64, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, (left, left // 2, 255 - left))
    img.paste((right, right, right), (size[0] // 2, 0, size[0], size[1]))
    img.save(path)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "output").mkdir(parents=True)
    for i in range(12):
        pair_image(root / "set" / "train" / f"p{i:02d}.png", 20 * i, 255 - 20 * i)
    for i in range(3):
        pair_image(root / "set" / "val" / f"v{i}.png", 90, 30)
    return root


@pytest.fixture
def client(tmp_path: Path, root: Path):
    with browser_client(toolbox_app(tmp_path, roots=[root])) as c:
        yield c


def wait_job(client: TestClient, job: dict, timeout: float = 60) -> dict:
    def ended():
        s = client.get(f"/dataset/jobs/{job['id']}").json()
        return s if s["state"] != "running" else None

    return wait_for(ended, timeout, what=f"job {job['id']} to end")


def test_layout_check_lists_splits_counts_sizes_and_problems(client, root: Path) -> None:
    (root / "set" / "train" / "notes.txt").write_text("about")
    (root / "set" / "train" / "broken.png").write_text("nope")
    data = client.get("/dataset/survey", params={"path": str(root / "set")}).json()
    assert data["counts"] == {"train": 13, "val": 3}
    assert data["sizes"]["train"] == {"64x32": 12}
    assert any("broken.png" in p for p in data["problems"])
    assert data["non_images"] == {"train": ["notes.txt"]}


def test_a_folder_without_train_says_the_layout_it_expects(client, root: Path) -> None:
    (root / "photos").mkdir()
    data = client.get("/dataset/survey", params={"path": str(root / "photos")}).json()
    assert "has no train/ folder; expected" in data["problems"][0]
    answer = client.get("/dataset/pairs", params={"path": str(root / "photos")})
    assert answer.status_code == 400
    assert "no train/ folder; expected a dataset folder holding train/" in answer.json()["error"]


@pytest.mark.parametrize("path", ["../", "set/../../", "/etc", "%2e%2e/%2e%2e"])
def test_paths_outside_the_roots_or_with_dotdot_are_refused(client, root: Path, path) -> None:
    for url in ("/dataset/survey", "/dataset/pairs", "/dataset/folders"):
        answer = client.get(url, params={"path": path})
        if path == "%2e%2e/%2e%2e":  # decoded once by the query parser: a name, not '..'
            assert answer.status_code in (400, 403, 404)
            continue
        assert answer.status_code == 403, (url, answer.text)
    answer = client.post(
        "/dataset/exclude",
        json={"path": str(root / "set"), "split": "train", "name": "../val/v0.png"},
    )
    assert answer.status_code == 400 and "not a plain file name" in answer.json()["error"]
    assert (root / "set" / "val" / "v0.png").is_file()


def test_a_symlink_out_of_the_root_is_refused(client, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    pair_image(outside / "train" / "x.png", 1, 2)
    os.symlink(outside, root / "link")
    answer = client.get("/dataset/survey", params={"path": str(root / "link")})
    assert answer.status_code == 403 and "outside the Toolbox's roots" in answer.json()["error"]


def test_posts_without_our_origin_are_refused(tmp_path: Path, root: Path) -> None:
    app = toolbox_app(tmp_path, roots=[root])
    plain = browser_client(app)
    body = {"path": str(root / "set"), "split": "train", "name": "p00.png"}
    answer = plain.post("/dataset/exclude", json=body, headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403
    assert (root / "set" / "train" / "p00.png").is_file()
    assert TestClient(app, base_url=BASE).get("/dataset").status_code == 401


def test_preview_is_the_cli_grid_and_follows_the_augmentations(client, root: Path) -> None:
    form = client.get("/dataset/augmentations").json()
    assert len(form["order"]) == 14 and form["fields"]["rotate"]["properties"]["degrees"]
    body = {"path": str(root / "set"), "n": 8, "columns": 4, "load_size": 32, "crop_size": 32}
    plain = client.post("/dataset/preview", json={**body, "augment": {"hflip": {"p": 0}}}).json()
    assert plain["shown"] == 8 and plain["image"].startswith("data:image/jpeg;base64,")
    assert plain["size"][0] > plain["size"][1]  # 4 columns of 2 rows
    gray = {"hflip": {"p": 0}, "grayscale": {"p": 1, "apply_to": "both"}}
    grey = client.post("/dataset/preview", json={**body, "augment": gray}).json()
    assert grey["image"] != plain["image"]
    val = client.post("/dataset/preview", json={**body, "split": "val", "augment": {}}).json()
    assert val["shown"] == 3 and "val/ has 3 pair(s); showing 3, not 8" in val["note"]
    bad = client.post("/dataset/preview", json={**body, "augment": {"blur": {"sigma": [3, 1]}}})
    assert bad.status_code == 400 and "dataloader.augment.blur.sigma" in bad.json()["error"]


def test_pair_and_split_dry_run_then_the_work_with_progress(client, root: Path) -> None:
    for i in range(10):
        pair_image(root / "A" / f"{i}.png", 10 * i, 0, size=(16, 16))
        pair_image(root / "B" / f"{i}.png", 0, 10 * i, size=(16, 16))
    body = {"a": str(root / "A"), "b": str(root / "B"), "out": str(root / "paired")}
    dry = client.post("/dataset/pair", json={**body, "dry_run": True}).json()
    assert dry["counts"] == {".": 10} and "would write 10 image(s)" in dry["lines"][0]
    assert not (root / "paired").exists()
    job = wait_job(client, client.post("/dataset/pair", json=body).json())
    assert job["state"] == "done" and job["result"]["counts"] == {".": 10}
    assert job["progress"]["done"] == job["progress"]["total"] == 10
    split = {"src": str(root / "paired"), "out": str(root / "made"), "ratios": [0.6, 0.2, 0.2]}
    dry = client.post("/dataset/split", json={**split, "dry_run": True}).json()
    assert dry["counts"] == {"train": 6, "val": 2, "test": 2} and not (root / "made").exists()
    job = wait_job(client, client.post("/dataset/split", json=split).json())
    assert job["state"] == "done" and len(list((root / "made" / "train").iterdir())) == 6
    refused = client.post("/dataset/split", json={**split, "out": "/tmp/x", "dry_run": True})
    assert refused.status_code == 403


def test_download_reports_progress_and_cancels(client, root: Path) -> None:
    state = Served()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/mirror"
        serve(state, build_archive(good_entries()))
        body = {"name": NAME, "parent": str(root / "datasets"), "url": url}
        job = wait_job(client, client.post("/dataset/download", json=body).json())
        assert job["state"] == "done", job
        assert job["result"]["counts"] == {"train": 3, "val": 2, "test": 1}
        assert job["progress"]["phase"] == "unpacking and checking"
        state.hang = threading.Event()  # headers, then nothing: cancel while it waits
        forced = {**body, "force": True}
        job = client.post("/dataset/download", json=forced).json()
        wait_for(lambda: state.requests[-1:] and len(state.requests) >= 2, 30, what="the request")
        assert client.post(f"/dataset/jobs/{job['id']}/cancel").status_code == 200
        state.hang.set()  # the stalled read ends; the next chunk check sees the cancel
        ended = wait_job(client, job)
        assert ended["state"] == "cancelled" and "cancelled" in ended["error"]
        outside = client.post("/dataset/download", json={**body, "parent": "/tmp"})
        assert outside.status_code == 403
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_jobs_are_listed_after_a_restart_a_running_one_as_failed(root: Path, tmp_path) -> None:
    """A real Toolbox process, restarted: its jobs' threads die with it, their records stay."""
    from nectargan.toolbox.jobs import STOPPED_WITH_TOOLBOX

    state = Served()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    first = ToolboxProcess(root, tmp_path / "state", tmp_path / "first.log")
    try:
        pair = {"a": str(root / "set" / "val"), "b": str(root / "set" / "val")}
        pair["out"] = str(root / "paired")
        api = first.client
        done = wait_job(api, api.post("/dataset/pair", json=pair).json())
        assert done["state"] == "done"
        serve(state, build_archive(good_entries()))
        state.hang = threading.Event()  # headers, then nothing: the download stays running
        url = f"http://127.0.0.1:{httpd.server_address[1]}/mirror"
        body = {"name": NAME, "parent": str(root / "datasets"), "url": url}
        hanging = api.post("/dataset/download", json=body).json()
        wait_for(lambda: state.requests, 30, what="the download's request")
        assert api.get(f"/dataset/jobs/{hanging['id']}").json()["state"] == "running"
    finally:
        first.stop()
        state.hang.set()
        httpd.shutdown()
        httpd.server_close()
    second = ToolboxProcess(root, tmp_path / "state", tmp_path / "second.log")
    try:
        jobs = second.client.get("/dataset/jobs").json()["jobs"]
        assert [j["id"] for j in jobs] == [hanging["id"], done["id"]]  # newest first
        assert jobs[0]["state"] == "failed" and jobs[0]["error"] == STOPPED_WITH_TOOLBOX
        assert jobs[1]["state"] == "done" and jobs[1]["result"] == done["result"]
        assert second.client.get(f"/dataset/jobs/{done['id']}").json()["state"] == "done"
    finally:
        second.stop()


def test_measures_sort_thumbnails_and_exclude_restore(client, root: Path) -> None:
    path = str(root / "set")
    job = wait_job(client, client.post("/dataset/measure", json={"path": path}).json())
    assert job["state"] == "done" and job["result"] == {"measured": 12, "total": 12}
    page = client.get("/dataset/pairs", params={"path": path, "sort": "brightness", "desc": "1"})
    items = page.json()["items"]
    values = [i["measures"]["brightness"] for i in items]
    assert values == sorted(values, reverse=True) and page.json()["measured"] == 12
    thumb = client.get("/dataset/thumb", params={"path": path, "split": "train", "name": "p03.png"})
    assert thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
    moved = client.post(
        "/dataset/exclude", json={"path": path, "split": "train", "name": "p03.png"}
    )
    assert moved.status_code == 200 and (root / "set" / "excluded" / "train" / "p03.png").is_file()
    excluded = client.get("/dataset/pairs", params={"path": path, "excluded": "1"}).json()
    assert [i["name"] for i in excluded["items"]] == ["p03.png"]
    client.post("/dataset/restore", json={"path": path, "split": "train", "name": "p03.png"})
    assert (root / "set" / "train" / "p03.png").is_file()


def test_ten_thousand_files_list_in_pages_through_the_page(client, root: Path) -> None:
    ten_thousand_pairs(root / "big" / "train")
    page = client.get(
        "/dataset/pairs", params={"path": str(root / "big"), "offset": 9990, "limit": 48}
    )
    data = page.json()
    assert data["total"] == 10_000 and [i["name"] for i in data["items"]][0] == "09990.png"
    assert len(data["items"]) == 10
    assert (
        client.get("/dataset/pairs", params={"path": str(root / "big"), "limit": 5000}).status_code
        == 400
    )


@pytest.mark.browser
def test_the_dataset_page_in_chromium(browser, root: Path, tmp_path: Path) -> None:
    """Check a dataset, watch the preview redraw on a change, measure, sort, exclude."""
    toolbox = ToolboxProcess(root, tmp_path / "state", tmp_path / "toolbox.log")
    failed: list[str] = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # an event stream closed by the page (job ended, page left) is aborted, not failed
        page.on(
            "requestfailed",
            lambda r: None if r.url.endswith("/events") else failed.append(r.url),
        )
        page.on("pageerror", lambda e: failed.append(str(e)))
        page.goto(f"{toolbox.base}/?token={toolbox.token}")
        page.goto(f"{toolbox.base}/dataset?path={root / 'set'}")
        page.wait_for_selector("#ds-splits tbody tr", timeout=30_000)
        assert "12" in page.inner_text("#ds-splits")
        page.wait_for_function(
            "() => (document.body.dataset.preview || '').startsWith('drawn')", timeout=60_000
        )
        before = page.get_attribute("#ds-preview-img", "src")
        page.fill("#ds-aug input[name='load_size']", "64")
        page.fill("#ds-aug input[name='crop_size']", "64")
        page.eval_on_selector(
            "fieldset[data-aug='grayscale'] input[type=range]",
            "e => { e.value = 1; e.dispatchEvent(new Event('input', {bubbles: true})); }",
        )
        page.wait_for_function(
            f"() => document.getElementById('ds-preview-img').src !== {before!r}"
            " && (document.body.dataset.preview || '').startsWith('drawn')",
            timeout=60_000,
        )
        page.select_option("#pb-sort", "brightness")
        page.click("#pb-measure")
        page.wait_for_selector("#pb-job[data-state=done]", timeout=60_000)
        page.wait_for_function(
            "() => document.getElementById('pb-range').textContent.includes('12 measured')",
            timeout=30_000,
        )
        first = page.locator(".pb-pair").first.get_attribute("data-name")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.pb-pair img')].every(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        shot = tmp_path / "toolbox-dataset.png"
        page.screenshot(path=str(shot), full_page=True)
        page.locator(".pb-pair").first.locator("button").click()
        page.wait_for_function(
            f"() => !document.querySelector('.pb-pair[data-name=\"{first}\"]')", timeout=30_000
        )
        assert (root / "set" / "excluded" / "train" / first).is_file()
        keep = os.environ.get("NECTARGAN_SCREENSHOT_DIR")
        if keep:
            os.makedirs(keep, exist_ok=True)
            shutil.copy(shot, os.path.join(keep, shot.name))
        assert shot.stat().st_size > 20_000
        page.close()
    finally:
        toolbox.stop()
    assert not failed, failed
