"""The Toolbox in a real browser, as a person uses it: fill the New-run form (a bad value
shows its error beside the field), pick the dataset, start a tiny run, watch it train,
Stop it, Resume it to the end. Screenshots of each page are kept for docs/toolbox.md
(``NECTARGAN_SCREENSHOT_DIR=docs/img``)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from _toolbox import ToolboxProcess, make_root, toolbox_page

from nectargan.runs import records

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDE, PHONE = (1280, 900), (390, 844)
# What tests/_support.py's tiny_training_config sets, typed into the form (seconds per epoch).
TINY = {
    "common.experiment_name": "browser",
    "dataloader.load_size": "32",
    "dataloader.crop_size": "32",
    "dataloader.batch_size": "4",
    "dataloader.num_workers": "0",
    "train.epochs_decay": "0",
    "train.generator.features": "8",
    "train.generator.n_downs": "5",
    "train.discriminator.base_channels": "8",
    "train.discriminator.max_channels": "32",
    "train.discriminator.n_layers": "2",
    "save.num_examples": "2",
}
EPOCHS = (
    "40"  # long enough to Stop after the first on an idle machine, short enough to finish on Resume
)


class Shots:
    """Screenshots into the test's folder, copied to NECTARGAN_SCREENSHOT_DIR when set."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.keep = os.environ.get("NECTARGAN_SCREENSHOT_DIR")

    def take(self, page, name: str, full_page: bool = False) -> None:
        path = self.folder / f"toolbox-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        assert path.stat().st_size > 5_000
        if self.keep:
            os.makedirs(self.keep, exist_ok=True)
            shutil.copy(path, Path(self.keep) / path.name)


def field(page, key: str):
    return page.locator(f'[name="{key}"]').last  # a checkbox's hidden 'false' comes first


def error_beside(page, key: str) -> str:
    return page.locator(f'[data-error-for="{key}"]').inner_text()


def state_label(page) -> str:
    return page.locator('#run [data-field="label"]').inner_text()


def pick_dataset(page, dataroot: Path) -> None:
    """Browse... -> the dataset's root -> Choose this folder; the layout check appears."""
    page.click(".nr-browse[data-target='f-dataloader.dataroot']")
    page.locator("#nr-picker-list button", has_text=f"{dataroot.name}/").click()
    page.wait_for_function(
        f"() => document.getElementById('nr-picker-path').textContent === {str(dataroot)!r}"
    )
    page.click("#nr-picker-choose")
    page.wait_for_selector("#nr-dataset .nr-ok", timeout=30_000)


@pytest.fixture
def toolbox(tmp_path, dataroot):
    root = make_root(tmp_path)
    box = ToolboxProcess(root, tmp_path / "state", tmp_path / "toolbox.log", [dataroot])
    yield box, root
    box.stop()


def test_new_run_start_watch_stop_resume_in_a_browser(toolbox, browser, dataroot, tmp_path):
    box, root = toolbox
    shots = Shots(tmp_path)
    page, foreign = toolbox_page(browser, box, WIDE)
    page.on("dialog", lambda d: d.accept())  # Stop asks for confirmation
    page.goto(f"{box.base}/new?token={box.token}")
    assert page.url == f"{box.base}/new"  # the token became a cookie and left the URL

    for key, value in TINY.items():
        field(page, key).fill(value)
    field(page, "visualizer.visdom.enable").uncheck()
    pick_dataset(page, dataroot)
    assert "train 32, val 4, test 4; images 32x32 px" in page.inner_text("#nr-dataset")
    page.check("#nr-only-changed")  # the view of what differs from the defaults
    changed = page.locator(".nr-field:visible label").all_inner_texts()
    assert {"epochs_decay", "load_size", "dataroot", "enable"} <= {c.strip(" •") for c in changed}
    assert not page.locator('.nr-field[data-key="train.lr_initial"]').is_visible()
    page.evaluate("window.scrollTo(0, 0)")
    shots.take(page, "new-run", full_page=True)
    page.uncheck("#nr-only-changed")

    field(page, "train.epochs").fill("-3")
    page.click("#nr-start")
    assert error_beside(page, "train.epochs") == "expected >= 0, got -3"
    assert not (root / "output" / "browser_v1").exists()  # nothing started
    page.locator('[data-error-for="train.epochs"]').scroll_into_view_if_needed()
    shots.take(page, "new-run-error")

    field(page, "train.epochs").fill(EPOCHS)  # the other values were kept
    page.click("#nr-start")
    page.wait_for_url(f"{box.base}/runs/0/browser_v1", timeout=120_000)
    exp = root / "output" / "browser_v1"
    # the run may already be past its first epoch when the page opens: only the form is fixed
    assert re.fullmatch(rf"\d+ of {EPOCHS}", page.locator('#run [data-field="epoch"]').inner_text())
    page.wait_for_function(
        "() => /^[1-9]/.test(document.querySelector('#run [data-field=\"epoch\"]').textContent)"
        " && Array.from(document.querySelectorAll('#examples img'))"
        ".some(i => i.complete && i.naturalWidth > 0)"
        " && document.querySelector('#val-rows tr')",
        timeout=240_000,
    )
    assert state_label(page) == "running"
    shots.take(page, "run", full_page=True)

    page.click("form[action$='/stop'] button")
    page.wait_for_function(
        "() => document.querySelector('#run [data-field=\"label\"]').textContent === 'interrupted'",
        timeout=120_000,
    )
    page.wait_for_selector("form[action$='/resume'] button", state="visible", timeout=60_000)
    assert not page.locator("form[action$='/stop'] button").is_visible()  # the process is gone
    assert (exp / "checkpoints" / "interrupted.pt").is_file()
    shots.take(page, "run-interrupted")

    page.click("form[action$='/resume'] button")
    page.wait_for_function(
        "() => document.querySelector('#run [data-field=\"label\"]').textContent === 'finished'"
        " && document.querySelector('#run [data-field=\"best\"]').textContent !== '-'",
        timeout=300_000,
    )
    best = records.read_val_best(exp)
    shown = page.locator('#run [data-field="best"]').inner_text()
    assert shown == f"{best['l1']:.4f} (epoch {best['epoch']})"
    assert page.locator('#run [data-field="epoch"]').inner_text() == f"{EPOCHS} of {EPOCHS}"
    shots.take(page, "run-finished", full_page=True)

    page.goto(f"{box.base}/")
    page.wait_for_selector("text=browser_v1")
    shots.take(page, "runs")
    page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
    shots.take(page, "runs-phone")
    page.goto(f"{box.base}/runs/0/browser_v1")
    page.wait_for_selector("#examples img")
    shots.take(page, "run-phone")
    page.set_viewport_size({"width": WIDE[0], "height": WIDE[1]})
    for name in ("queue", "settings"):
        page.goto(f"{box.base}/{name}")
        shots.take(page, name)
    page.close()
    assert foreign == [], "the Toolbox loaded something from another origin"
