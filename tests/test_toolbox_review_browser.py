"""The Review page in a real browser: one run (losses weighted and raw, epoch charts,
example slider, config changes, timing), then two runs compared. Screenshot for
docs/toolbox.md (``NECTARGAN_SCREENSHOT_DIR=docs/img``)."""

from __future__ import annotations

import json
import shutil

import pytest
from _toolbox import ToolboxProcess, make_root, toolbox_page
from test_toolbox_browser import Shots

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def toolbox(tmp_path, tiny_experiment):
    root = make_root(tmp_path)
    for name in ("first", "second"):
        shutil.copytree(
            tiny_experiment, root / "output" / name, ignore=shutil.ignore_patterns(".nectargan*")
        )
    config_path = root / "output" / "second" / "config.json"
    config = json.loads(config_path.read_text())
    config["train"]["lr_initial"] = 0.0005
    config_path.write_text(json.dumps(config))
    box = ToolboxProcess(root, tmp_path / "state", tmp_path / "toolbox.log")
    yield box, root
    box.stop()


def test_review_one_run_then_compare_two(toolbox, browser, tmp_path):
    box, root = toolbox
    shots = Shots(tmp_path)
    page, foreign = toolbox_page(browser, box)
    page.goto(f"{box.base}/review?token={box.token}")
    page.check("input[value='0/first']")
    page.click("#rv-show")
    page.wait_for_selector("#rv-one:not([hidden]) #rv-losses svg")
    assert page.url.endswith("/review?run=0%2Ffirst")
    assert page.locator("#rv-losses .chart h3").all_inner_texts() == [
        "G losses (weighted)",
        "D losses (weighted)",
    ]
    page.check("#rv-raw")
    assert page.locator("#rv-losses .chart h3").first.inner_text() == "G losses (raw)"
    titles = page.locator("#rv-epochs .chart h3").all_inner_texts()
    assert titles == [
        "val L1",
        "val PSNR (dB)",
        "val SSIM",
        "learning rate",
        "throughput (images/s)",
    ]
    assert page.inner_text("#rv-example-epoch") == "epoch 2"
    page.locator("#rv-slider").fill("0")
    assert page.inner_text("#rv-example-epoch") == "epoch 1"
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#rv-examples img'))"
        ".every(i => i.complete && i.naturalWidth > 0) && document.querySelector('#rv-examples img')"
    )
    changed = page.locator("#rv-changed th").all_inner_texts()
    assert "dataloader.load_size" in changed and "train.lr_initial" not in changed
    assert page.locator("#rv-timing li").count() >= 1
    shots.take(page, "review", full_page=True)

    page.check("input[value='0/second']")
    page.click("#rv-show")
    page.wait_for_selector("#rv-many:not([hidden]) #rv-overlay-val svg")
    assert page.locator("#rv-runs tr").count() == 2
    assert page.locator("#rv-diff tr").evaluate_all("rs => rs.map(r => r.dataset.key)") == [
        "train.lr_initial"
    ]
    assert page.locator("#rv-overlay-val .chart").count() == 3
    shots.take(page, "review-compare", full_page=True)

    shutil.rmtree(root / "output" / "second")  # deleted while the page is open
    page.click("#rv-show")
    page.wait_for_selector("#rv-message:not([hidden])")
    assert page.inner_text("#rv-message").startswith("Cannot show this: no run 'second'")
    page.close()
    assert "Traceback" not in box.log.read_text()
    assert foreign == []
