"""The Testing page in a real browser on a tiny finished run: test it, sort the grid worst
first, upload images (one refused by name), infer, then delete the run under the open page.
Screenshot for docs/toolbox.md (``NECTARGAN_SCREENSHOT_DIR=docs/img``)."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from _toolbox import ToolboxProcess, make_root, toolbox_page
from PIL import Image
from test_toolbox_browser import Shots

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def toolbox(tmp_path, tiny_experiment):
    root = make_root(tmp_path)
    run = root / "output" / tiny_experiment.name
    shutil.copytree(tiny_experiment, run, ignore=shutil.ignore_patterns("test", ".nectargan.lock"))
    box = ToolboxProcess(root, tmp_path / "state", tmp_path / "toolbox.log")
    yield box, run
    box.stop()


def image_file(folder, name: str, color) -> dict:
    out = io.BytesIO()
    Image.new("RGB", (48, 32), color).save(out, format="PNG")
    return {"name": name, "mimeType": "image/png", "buffer": out.getvalue()}


def captions(page) -> list[str]:
    return page.locator("#ts-grid figure").evaluate_all("fs => fs.map(f => f.dataset.image)")


def test_testing_page_test_sort_upload_infer(toolbox, browser, tmp_path):
    box, run = toolbox
    shots = Shots(tmp_path)
    page, foreign = toolbox_page(browser, box)
    page.goto(f"{box.base}/testing?token={box.token}")
    assert page.url == f"{box.base}/testing"
    page.wait_for_selector("#ts-epoch option[value='best']", state="attached")
    page.select_option("#ts-epoch", "latest")
    page.click("#ts-test")
    page.wait_for_function(
        "() => document.querySelectorAll('#ts-grid figure img').length === 4"
        " && Array.from(document.querySelectorAll('#ts-grid img'))"
        ".every(i => i.complete && i.naturalWidth === 96)",
        timeout=180_000,
    )
    assert page.locator("#ts-progress [data-field=progress]").inner_text().startswith("done: ")
    result = page.input_value("#ts-result")
    written = json.loads((run / "test" / result / "metrics.json").read_text())
    rows = written["per_image"]
    worst_l1 = [r["image"] for r in sorted(rows, key=lambda r: -r["l1"])]
    assert captions(page) == worst_l1
    page.select_option("#ts-sort", "psnr")
    assert captions(page) == [r["image"] for r in sorted(rows, key=lambda r: r["psnr"])]
    shown_l1 = page.locator("#ts-means [data-field=l1]").inner_text()
    assert shown_l1 == f"{written['metrics']['l1']:.4f}"

    page.set_input_files(
        "#ts-files",
        [
            image_file(tmp_path, "red.png", (220, 30, 30)),
            image_file(tmp_path, "green.png", (30, 200, 60)),
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"},
        ],
    )
    page.wait_for_function(
        "() => document.querySelectorAll('#ts-uploads li').length === 3"
        " && !document.querySelector('#ts-uploads li:not(.ok):not(.bad)')"
    )
    items = page.locator("#ts-uploads li").all_inner_texts()
    assert items[:2] == ["red.png: 48x32 px", "green.png: 48x32 px"]
    assert items[2].startswith("upload 'notes.txt': not an image name")
    page.click("#ts-infer")
    page.wait_for_function(
        "() => document.querySelectorAll('#ts-infer-grid figure').length === 2"
        " && Array.from(document.querySelectorAll('#ts-infer-grid img'))"
        ".filter(i => i.complete && i.naturalWidth === 48).length === 4",
        timeout=180_000,
    )
    assert page.locator("#ts-zip").is_visible()
    jobs = page.locator("#ts-jobs tbody tr")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#ts-jobs tbody tr'))"
        ".map(r => r.dataset.state).join() === 'done,done'"
    )  # the infer job, then the test: both kept (on disk: a restarted Toolbox lists them)
    assert "infer" in jobs.nth(0).inner_text() and "test" in jobs.nth(1).inner_text()
    page.select_option("#ts-sort", "l1")
    page.evaluate("window.scrollTo(0, 0)")
    shots.take(page, "testing", full_page=True)

    state = tmp_path / "state"
    assert len(list((state / "uploads").iterdir())) == 1
    jobs.nth(0).locator("[data-action=delete]").click()  # the infer job: outputs and uploads go
    page.wait_for_function("() => document.querySelectorAll('#ts-jobs tbody tr').length === 1")
    assert list((state / "uploads").iterdir()) == []
    assert len(list((state / "jobs").iterdir())) == 1

    shutil.rmtree(run)  # deleted while its page is open
    page.select_option("#ts-result", result)
    message = page.locator("#ts-message")
    message.wait_for(state="visible")
    assert message.inner_text() == (
        f"This result cannot be read: no run {run.name!r} in {run.parent}"
    )
    page.close()
    assert "Traceback" not in box.log.read_text()
    assert foreign == [], "the Testing page loaded something from another origin"
