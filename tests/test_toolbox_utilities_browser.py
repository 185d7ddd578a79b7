"""The Utilities page in real headless Chromium: a bad opset shows its message, then a tiny
run is exported (live output, the self-check's max difference from torch), its ONNX file is
tested on a folder with the outputs shown, a folder outside the roots is refused, and
Ctrl+digit / Alt+digit switch pages. The screenshot is docs/img/toolbox-utilities.png
(``NECTARGAN_SCREENSHOT_DIR=docs/img``)."""

from __future__ import annotations

import re
import shutil
import zipfile

import pytest
from _toolbox import ToolboxProcess, make_root, toolbox_page
from test_toolbox_browser import WIDE, Shots

from nectargan.toolbox.utility_jobs import opset_range

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def toolbox(tmp_path, tiny_experiment, dataroot):
    root = make_root(tmp_path)
    shutil.copytree(tiny_experiment, root / "output" / "tiny_v1")
    box = ToolboxProcess(root, tmp_path / "state", tmp_path / "toolbox.log", [dataroot])
    yield box, root
    box.stop()


def job_ended(page, box_id: str, timeout_ms: int = 240_000) -> str:
    page.wait_for_function(
        f"() => ['done', 'failed', 'stopped'].includes(document.getElementById({box_id!r}).dataset.state)",
        timeout=timeout_ms,
    )
    return page.get_attribute(f"#{box_id}", "data-state")


def test_export_then_test_the_model_in_a_browser(toolbox, browser, dataroot, tmp_path):
    box, root = toolbox
    page, foreign = toolbox_page(browser, box, WIDE)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))  # a script error
    page.on("console", lambda m: "Content Security Policy" in m.text and problems.append(m.text))
    page.goto(f"{box.base}/utilities?token={box.token}")
    assert page.url == f"{box.base}/utilities"

    low, high = opset_range()
    page.select_option("#ex-run", "0/tiny_v1")
    page.fill("[name=epoch]", "best")
    page.fill("[name=opset]", "99")
    page.click("#ex-go")
    page.wait_for_selector("#ex-error:not([hidden])")
    assert (
        page.inner_text("#ex-error")
        == f"opset '99': expected a whole number {low}-{high}, or empty"
    )
    assert page.is_hidden("#ex-job")

    page.fill("[name=opset]", "")
    page.click("#ex-go")
    assert job_ended(page, "ex-job") == "done", page.inner_text("#ex-job")
    diff = page.inner_text('#ex-check [data-field="diff"]')
    assert re.fullmatch(r"\d\.\d\de[-+]\d+", diff) and float(diff) < 1e-4
    assert page.locator("#ex-checked li").count() >= 1
    assert "max abs difference vs torch" in page.inner_text('#ex-job [data-field="log"]')
    onnx_path = page.inner_text('#ex-check [data-field="path"]')
    assert onnx_path.startswith(str(root / "output" / "tiny_v1" / "export"))

    page.wait_for_function(f"() => document.getElementById('in-model').value === {onnx_path!r}")
    page.fill("#in-folder", str(tmp_path))  # the test's folder: not under a root
    page.click("#in-go")
    page.wait_for_selector("#in-error:not([hidden])")
    assert page.inner_text("#in-error").startswith(
        f"path '{tmp_path}' is outside the Toolbox's roots"
    )

    # the folder from the picker (it lists the roots only), not typed
    page.fill("#in-folder", "")
    page.click("#in-browse")
    page.locator("#ut-picker-list button", has_text=f"{dataroot.name}/").click()
    page.locator("#ut-picker-list button", has_text="test/").click()
    page.wait_for_function(
        f"() => document.getElementById('ut-picker-path').textContent === {str(dataroot / 'test')!r}"
    )
    page.click("#ut-picker-choose")
    assert page.input_value("#in-folder") == str(dataroot / "test")
    page.check("[name=paired]")
    page.click("#in-go")
    assert job_ended(page, "in-job") == "done", page.inner_text("#in-job")
    page.wait_for_function(
        "() => { const imgs = Array.from(document.querySelectorAll('#in-images img'));"
        " return imgs.length === 4 && imgs.every(i => i.complete && i.naturalWidth === 64); }",
        timeout=30_000,
    )  # 32 px inputs, shown input | output
    assert page.is_hidden("#in-error")
    with page.expect_download() as download:
        page.click("#in-zip")
    with zipfile.ZipFile(download.value.path()) as archive:
        names = sorted(archive.namelist())
    assert names == sorted(f"{p.stem}.png" for p in (dataroot / "test").iterdir())
    page.evaluate("window.scrollTo(0, 0)")
    Shots(tmp_path).take(page, "utilities", full_page=True)

    # the jobs are kept: after a reload both are listed; Show brings the export back
    page.reload()
    rows = page.locator("#ut-jobs-list tbody tr")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    assert [r.get_attribute("data-state") for r in rows.all()] == ["done", "done"]
    rows.nth(1).locator("[data-action=show]").click()  # the older one: the export
    page.wait_for_selector("#ex-check:not([hidden])")
    assert page.inner_text('#ex-check [data-field="path"]') == onnx_path
    rows.nth(0).locator("[data-action=delete]").click()  # the infer job, with its outputs
    page.wait_for_function("() => document.querySelectorAll('#ut-jobs-list tbody tr').length === 1")

    nav = page.locator(".topbar nav a").all_inner_texts()
    assert page.get_attribute(".topbar nav a >> nth=0", "aria-keyshortcuts") == "Control+1 Alt+1"
    page.keyboard.press("Control+1")
    page.wait_for_url(f"{box.base}/")
    page.keyboard.press(f"Alt+{nav.index('Utilities') + 1}")
    page.wait_for_url(f"{box.base}/utilities")
    page.keyboard.press(f"Control+{nav.index('Utilities') + 1}")  # the page it is on: stays
    assert page.url == f"{box.base}/utilities"
    assert not foreign and not problems, (foreign, problems)
