"""Headless Chromium on the Toolbox: the Runs and Run pages follow a live run, embed its
Visdom env, stop and resume it, and read at 390 px wide. Screenshots of each page."""

from __future__ import annotations

import json
import os
import shutil
import signal

import pytest
from _support import free_port, tiny_training_config, wait_for
from _toolbox import ToolboxProcess, make_root

from nectargan.toolbox.launcher import process_alive, signal_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def keep_screenshot(page, tmp_path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("NECTARGAN_SCREENSHOT_DIR")  # e.g. docs/img or CI artifacts
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, os.path.join(keep, name))


def fits_width(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_runs_and_run_pages_follow_stop_and_resume_a_live_run(
    browser, visdom_server, env_name, dataroot, tiny_experiment, tmp_path
):
    root = make_root(tmp_path)
    shutil.copytree(tiny_experiment, root / "output" / "tiny_v1")
    state = tmp_path / "state"
    state.mkdir()
    # Settings name another port than the run's own: the run's page still frames its server
    (state / "settings.json").write_text(json.dumps({"visdom_port": free_port()}))
    box = ToolboxProcess(root, state, tmp_path / "toolbox.log", [dataroot])
    visdom = {"enable": True, "port": visdom_server.port, "env_name": env_name}
    config = tiny_training_config(
        root / "output",
        dataroot,
        "live",
        train={"epochs": 500, "epochs_decay": 0},
        visualizer={"visdom": visdom},
    )
    pid = box.client.post("/api/runs", json={"config": config}).json()["launch"]["pid"]
    page = browser.new_page(viewport=DESKTOP)
    hosts, csp_errors = set(), []
    page.on("request", lambda r: hosts.add(r.url.split("/")[2].split(":")[0]))
    page.on("console", lambda m: "Content Security Policy" in m.text and csp_errors.append(m.text))
    try:
        page.goto(f"{box.base}/?token={box.token}")
        assert page.url == f"{box.base}/"  # the token left the address bar for a cookie
        page.wait_for_selector("tr[data-run='0/live_v1'] .state-running", timeout=120_000)
        page.wait_for_selector("tr[data-run='0/live_v1'] img", timeout=120_000)
        tiny_row = page.locator("tr[data-run='0/tiny_v1']").inner_text()
        assert "2 of 2" in tiny_row and "epoch 2" in tiny_row
        keep_screenshot(page, tmp_path, "toolbox_runs.png")

        page.click("a[href='/runs/0/live_v1']")
        page.wait_for_selector("#examples img", timeout=120_000)
        page.wait_for_selector("#loss-charts svg path", timeout=30_000)
        page.wait_for_function(
            "() => parseInt(document.querySelector('[data-field=epoch]').textContent) >= 1"
        )
        frame = page.locator("#visdom")
        wait_for(lambda: f"/env/{env_name}" in (frame.get_attribute("src") or ""), 30)
        assert page.locator("#visdom-section").is_visible()
        dashboard = page.frame_locator("#visdom")
        dashboard.locator(".js-plotly-plot .scatterlayer path").first.wait_for(timeout=60_000)
        assert page.locator("form[action$='/stop']").is_visible()
        assert page.locator("form[action$='/resume']").is_hidden()
        keep_screenshot(page, tmp_path, "toolbox_run.png")

        page.set_viewport_size(PHONE)
        assert fits_width(page), "the Run page scrolls sideways at 390 px"
        keep_screenshot(page, tmp_path, "toolbox_run_390.png")
        page.goto(f"{box.base}/")
        page.wait_for_selector("tr[data-run='0/live_v1'] img")
        assert fits_width(page), "the Runs page scrolls sideways at 390 px"
        keep_screenshot(page, tmp_path, "toolbox_runs_390.png")
        page.set_viewport_size(DESKTOP)

        page.goto(f"{box.base}/runs/0/live_v1")
        page.once("dialog", lambda d: d.accept())
        page.click("form[action$='/stop'] button")
        page.wait_for_selector("[data-field=label].state-interrupted", timeout=60_000)
        assert (root / "output" / "live_v1" / "checkpoints" / "interrupted.pt").is_file()
        wait_for(lambda: not process_alive(pid), 60, what="the stopped run's process to end")
        page.click("form[action$='/resume'] button")
        page.wait_for_load_state()
        # at once, before the run's record says running: "starting", never "interrupted"
        assert page.inner_text("[data-field=label]") in ("starting", "running")
        assert page.locator("form[action$='/stop']").is_visible()
        page.wait_for_selector("[data-field=label].state-running", timeout=60_000)
        assert "resumed (pid" in page.inner_text(".notice")
    finally:
        page.close()
        box.client.post("/api/runs/0/live_v1/stop")
        box.stop()
        if process_alive(pid):
            signal_run(pid, signal.SIGKILL)
    assert hosts == {"127.0.0.1"}, hosts
    assert not csp_errors, csp_errors
