"""The managed Visdom server answers only its own origin, under a host name it knows.

Issue 23: any web page could POST ``{"eid": ...}`` to ``/delete_env`` (a "simple"
request browsers send cross-origin without asking) and a DNS-rebinding page
could reach it under its own name. Every request here goes to a real server.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import websocket
from _support import TestServer, free_port, open_env_page, wait_for

from nectargan.visualizer.visdom import server
from nectargan.visualizer.visdom.origin_guard import ROUTES, HostPolicy, check_allow_host

ENV = "probe128"
FOREIGN = "http://evil.example"

# One request per route Visdom registers, each one that would do its harm unguarded.
ATTACKS: dict[str, tuple[str, str, dict | None]] = {
    r"/(robots\.txt)": ("GET", "/robots.txt", None),
    r"/(favicon\.ico)": ("GET", "/favicon.ico", None),
    "/static/(.*)": ("GET", "/static/js/main.js", None),
    "/events": (
        "POST",
        "/events",
        {"eid": ENV, "win": "note", "data": [{"content": "pwned", "type": "text"}], "opts": {}},
    ),
    "/update": (
        "POST",
        "/update",
        {"eid": ENV, "win": "note", "append": False, "data": {"content": "pwned"}},
    ),
    "/close": ("POST", "/close", {"eid": ENV, "win": None}),
    "/socket": ("GET", "/socket", None),
    "/socket_wrap": ("GET", "/socket_wrap", None),
    "/vis_socket": ("GET", "/vis_socket", None),
    "/vis_socket_wrap": ("POST", "/vis_socket_wrap", {"message_type": "query"}),
    "/env/(.*)": ("POST", "/env/evil_env", {"eid": "evil_env"}),
    "/compare/(.*)": ("POST", f"/compare/{ENV}", {"sid": "x"}),
    "/save": ("POST", "/save", {"data": [ENV, "main"]}),
    "/error/(.*)": ("GET", "/error/x", None),
    "/win_exists": ("POST", "/win_exists", {"eid": ENV, "win": "note"}),
    "/win_data": ("POST", "/win_data", {"eid": ENV, "win": "note", "data": "{}"}),
    "/delete_env": ("POST", "/delete_env", {"eid": ENV}),
    "/win_hash": ("POST", "/win_hash", {"eid": ENV, "win": "note"}),
    "/env_state": ("POST", "/env_state", {}),
    "/fork_env": ("POST", "/fork_env", {"prev_eid": ENV, "eid": "evil_fork"}),
    "/user/(.*)": ("GET", "/user/style.css", None),
    "(.*)": ("POST", "/", {"username": "u", "password": "p"}),
}


def send(
    srv: TestServer, method: str, path: str, body: dict | None = None, **headers: str
) -> tuple[int, str]:
    """One raw request, as a browser (or curl) would send it: ``text/plain`` body."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        data = None if body is None else json.dumps(body)
        hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
        if data is not None:
            hdrs["Content-Type"] = "text/plain"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def env_snapshot(srv: TestServer) -> tuple[list[str], dict, dict[str, bytes]]:
    """The env list, ``ENV``'s windows and every saved env file, as the server holds them."""
    status, envs = send(srv, "POST", "/env_state", {})
    assert status == 200, envs
    status, windows = send(srv, "POST", "/win_data", {"eid": ENV, "win": None})
    assert status == 200, windows
    files = {p.name: p.read_bytes() for p in sorted(srv.env_dir.glob("*.json"))}
    return sorted(json.loads(envs)), json.loads(windows), files


@pytest.fixture
def probe_server(tmp_path) -> Iterator[TestServer]:
    """A private server holding env ``probe128`` (two windows), saved to its env folder."""
    srv = TestServer(tmp_path / "envs").start()
    client = srv.client(ENV)
    client.text("hello", win="note", env=ENV)
    client.line(X=np.arange(5.0), Y=np.arange(5.0), win="loss", env=ENV)
    client.save([ENV])
    wait_for(lambda: (srv.env_dir / f"{ENV}.json").is_file(), 10, what="env saved")
    yield srv
    srv.stop()


def test_every_route_visdom_registers_is_listed_and_attacked(tmp_path):
    from visdom.server import app as visdom_app

    app = visdom_app.Application(env_path=f"{tmp_path}/")
    patterns = {rule.matcher.regex.pattern.removesuffix("$") for rule in app.wildcard_router.rules}
    assert patterns == set(ROUTES)  # a new route in a Visdom upgrade is looked at, not assumed
    assert set(ATTACKS) == set(ROUTES)


def test_the_issue_curl_is_refused_and_env_and_file_survive(probe_server):
    before = env_snapshot(probe_server)
    curl = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", "-X", "POST", "-H", f"Origin: {FOREIGN}"]
        + ["-H", "Content-Type: text/plain", "--data", json.dumps({"eid": ENV})]
        + [f"{probe_server.url}/delete_env"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    body, code = curl.stdout.rsplit("\n", 1)
    assert code == "403", curl.stdout
    assert "evil.example" in body and "not this Visdom server's own" in body
    assert env_snapshot(probe_server) == before


def test_a_foreign_origin_is_refused_on_every_route_and_nothing_changes(probe_server):
    before = env_snapshot(probe_server)
    for route, (method, path, body) in ATTACKS.items():
        status, text = send(probe_server, method, path, body, Origin=FOREIGN)
        assert status == 403, (route, status, text)
    # A local web app on another port is just as foreign (the Toolbox, say).
    other_local = f"http://127.0.0.1:{probe_server.port + 1}"
    for path, body in (("/delete_env", {"eid": ENV}), ("/close", {"eid": ENV, "win": None})):
        assert send(probe_server, "POST", path, body, Origin=other_local)[0] == 403
    assert send(probe_server, "POST", "/close", {"eid": ENV}, Origin="null")[0] == 403
    assert env_snapshot(probe_server) == before


def test_the_same_requests_from_the_servers_own_origin_still_work(probe_server):
    """The control: the attack bodies do their harm when the origin is the page's own."""
    own = probe_server.url
    assert send(probe_server, "POST", "/fork_env", ATTACKS["/fork_env"][2], Origin=own)[0] == 200
    assert (probe_server.env_dir / "evil_fork.json").is_file()
    status, _ = send(probe_server, "POST", "/delete_env", {"eid": ENV}, Origin=own)
    assert status == 200
    assert not (probe_server.env_dir / f"{ENV}.json").exists()
    # No Origin at all (the Python client, curl): also the server's own.
    assert send(probe_server, "POST", "/delete_env", {"eid": "evil_fork"})[0] == 200
    assert not (probe_server.env_dir / "evil_fork.json").exists()


@pytest.mark.parametrize("path", ["/socket", "/vis_socket"])
def test_websockets_check_the_origin(probe_server, path):
    url = f"ws://127.0.0.1:{probe_server.port}{path}"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, origin=FOREIGN, timeout=10)
    assert refused.value.status_code == 403
    ws = websocket.create_connection(url, timeout=10)  # the client's own origin, as visdom sends
    try:
        first = json.loads(ws.recv())
        assert first["command"] in ("register", "alive")
    finally:
        ws.close()


def test_a_rebinding_host_name_is_refused_on_every_request(probe_server):
    before = env_snapshot(probe_server)
    rebound = f"evil.example:{probe_server.port}"
    status, text = send(probe_server, "GET", f"/env/{ENV}", Host=rebound)
    assert status == 403 and "evil.example" in text and "Host" in text
    # Origin and Host agree under rebinding: the Host check alone must stop it.
    for path, body in (("/delete_env", {"eid": ENV}), ("/close", {"eid": ENV, "win": None})):
        status, _ = send(probe_server, "POST", path, body, Host=rebound, Origin=f"http://{rebound}")
        assert status == 403
    assert send(probe_server, "POST", "/delete_env", {"eid": ENV}, Host=rebound)[0] == 403
    # A routable address is no name for a loopback-bound server either.
    assert send(probe_server, "GET", "/", Host=f"10.1.2.3:{probe_server.port}")[0] == 403
    assert env_snapshot(probe_server) == before
    for host in (f"localhost:{probe_server.port}", "LOCALHOST", f"[::1]:{probe_server.port}"):
        assert send(probe_server, "GET", f"/env/{ENV}", Host=host)[0] == 200, host
    same = f"localhost:{probe_server.port}"
    status, _ = send(probe_server, "POST", "/env_state", {}, Host=same, Origin=f"http://{same}")
    assert status == 200


def test_allow_host_adds_a_name(tmp_path):
    srv = TestServer(tmp_path / "envs", allow_hosts=("Mybox.LAN",)).start()
    try:
        assert send(srv, "GET", "/", Host=f"mybox.lan:{srv.port}")[0] == 200
        assert send(srv, "GET", "/", Host=f"otherbox.lan:{srv.port}")[0] == 403
    finally:
        srv.stop()


def test_policy_beyond_loopback_takes_addresses_and_named_hosts():
    open_bind = HostPolicy.for_bind("0.0.0.0", ["mybox.lan"])
    assert open_bind.refusal("192.168.1.5:8097", None) is None
    assert open_bind.refusal("[fe80::1]:8097", "http://[fe80::1]:8097") is None
    assert open_bind.refusal("mybox.lan:8097", "http://mybox.lan:8097") is None
    refused = open_bind.refusal("evil.example:8097", None)
    assert refused is not None and "--allow-host" in refused
    assert open_bind.refusal("192.168.1.5:8097", FOREIGN) is not None
    assert HostPolicy.for_bind("127.0.0.1").refusal("192.168.1.5:8097", None) is not None
    assert HostPolicy.for_bind("::1").refusal("[::1]:8097", "http://[::1]:8097") is None


@pytest.mark.parametrize("bad", ["http://mybox", "mybox:8097", "a/b", "", "-x", "my box"])
def test_bad_allow_host_is_named(bad):
    with pytest.raises(ValueError, match="--allow-host") as err:
        check_allow_host(bad)
    assert repr(bad) in str(err.value)


def test_bad_allow_host_on_the_command_line_is_one_line_exit_2():
    res = subprocess.run(
        [sys.executable, "-m", "nectargan", "visdom", "start", "--port", str(free_port())]
        + ["--allow-host", "http://mybox:80"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("nectargan visdom start: error: --allow-host 'http://mybox:80'")


def test_open_bind_answers_addresses_and_allowed_names(tmp_path):
    port = free_port()
    opts = server.ServerOptions(
        port=port, host="0.0.0.0", env_dir=tmp_path, insecure=True, allow_hosts=("mybox.lan",)
    )
    record, started = server.start(opts)
    try:
        assert started
        srv = TestServer(tmp_path, port=port)
        assert send(srv, "GET", "/", Host=f"mybox.lan:{port}")[0] == 200
        assert send(srv, "GET", "/", Host=f"192.0.2.7:{port}")[0] == 200
        status, text = send(srv, "GET", "/", Host=f"evil.example:{port}")
        assert status == 403 and "--allow-host" in text
        assert send(srv, "POST", "/delete_env", {"eid": "main"}, Origin=FOREIGN)[0] == 403
    finally:
        server.stop(port)


def test_client_and_visualizer_deliver_as_before(visdom_server, env_name):
    from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

    vis = VisdomVisualizer(env=env_name, server="http://127.0.0.1", port=visdom_server.port)
    try:
        vis.update_loss_graphs(1.0, {"G_L1": 0.5}, {"D_real": 0.25})
        vis.update_text("still here", win="note")
        assert vis.flush(timeout=30)
    finally:
        vis.close()
    series = visdom_server.line_series("loss_G", env_name)
    assert series and series[next(iter(series))][1] == [0.5]
    assert "still here" in json.dumps(visdom_server.window("note", env_name))


def test_login_server_still_signs_in_and_refuses_a_foreign_sign_in(tmp_path, monkeypatch):
    """``--login``: our client signs in (no Origin); a sign-in from a foreign page is refused."""
    from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

    monkeypatch.setenv("HOME", str(tmp_path))  # Visdom keeps COOKIE_SECRET under ~/.visdom
    monkeypatch.setenv("VISDOM_USERNAME", "ada")
    monkeypatch.setenv("VISDOM_PASSWORD", "s3cret")
    monkeypatch.setenv("VISDOM_COOKIE", "a-test-cookie-secret")
    srv = TestServer(tmp_path / "envs")
    opts = server.ServerOptions(port=srv.port, env_dir=srv.env_dir, login=True)
    proc = server.spawn(opts, tmp_path / "login.log")
    try:
        assert server.wait_until_answering(opts, 30, pid=proc.pid)
        vis = VisdomVisualizer(
            env="logged",
            server="http://127.0.0.1",
            port=srv.port,
            username="ada",
            password="s3cret",
        )
        try:
            vis.update_text("signed in", win="note")
            assert vis.flush(timeout=30)
        finally:
            vis.close()
        import hashlib

        sign_in = {"username": "ada", "password": hashlib.sha256(b"s3cret").hexdigest()}
        assert send(srv, "POST", "/", sign_in)[0] == 200
        assert send(srv, "POST", "/", sign_in, Origin=FOREIGN)[0] == 403
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class _FramingPage(BaseHTTPRequestHandler):
    """A page of another loopback origin (as the Toolbox is): frames the env, or attacks it."""

    body = b""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def other_origin_page() -> Iterator:
    """``serve(html)`` -> URL of that page on http://127.0.0.1:PORT: not Visdom's origin, but
    the same site, as the Toolbox frames it (Chromium denies a third-party frame its
    localStorage, without which Visdom's page does not start)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FramingPage)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def serve(html: str) -> str:
        _FramingPage.body = html.encode()
        return f"http://127.0.0.1:{httpd.server_address[1]}/"

    yield serve
    httpd.shutdown()
    httpd.server_close()


def _pane_titles(frame) -> list[str]:
    return frame.evaluate(
        "() => Array.from(document.querySelectorAll('.window .bar')).map(b => b.textContent)"
    )


@pytest.mark.browser
def test_env_page_loads_and_closes_a_window_from_the_page(browser, probe_server):
    page, failed = open_env_page(browser, probe_server, ENV, (1200, 800))
    try:
        page.wait_for_selector("button[title=close]", timeout=30_000)
        assert page.locator("button[title=close]").count() == 2
        page.locator("button[title=close]").first.click()
        wait_for(
            lambda: len(env_snapshot(probe_server)[1]) == 1, 15, what="a window closed by the page"
        )
        assert not failed, failed
    finally:
        page.close()


@pytest.mark.browser
def test_env_page_framed_by_another_loopback_origin_shows_and_works(
    browser, probe_server, other_origin_page
):
    env_url = f"{probe_server.url}/env/{ENV}"
    url = other_origin_page(f'<iframe id="v" src="{env_url}" width="1000" height="700"></iframe>')
    page = browser.new_page()
    try:
        page.goto(url, wait_until="load", timeout=30_000)
        frame = wait_for(lambda: page.frame(url=env_url), 30, what="the framed env page")
        frame.wait_for_selector("button[title=close]", timeout=30_000)
        assert frame.locator("button[title=close]").count() == 2
        frame.locator("button[title=close]").first.click()
        wait_for(lambda: len(env_snapshot(probe_server)[1]) == 1, 15, what="closed from the frame")
    finally:
        page.close()


@pytest.mark.browser
def test_a_foreign_page_in_chromium_cannot_delete_the_env(browser, probe_server, other_origin_page):
    before = env_snapshot(probe_server)
    target = f"{probe_server.url}/delete_env"
    url = other_origin_page(
        "<script>window.sent = Promise.all(["
        f"fetch('{target}', {{method: 'POST', mode: 'no-cors', body: '{{\"eid\": \"{ENV}\"}}',"
        " headers: {'Content-Type': 'text/plain'}}).then(() => 'sent', e => String(e)),"
        f"new Promise(r => {{ const s = new WebSocket('ws://127.0.0.1:{probe_server.port}/socket');"
        " s.onopen = () => r('open'); s.onerror = () => r('refused'); }),"
        "]);</script>"
    )
    page = browser.new_page()
    try:
        page.goto(url, wait_until="load", timeout=30_000)
        outcome = page.evaluate("() => window.sent")
        assert outcome == ["sent", "refused"], outcome  # the POST left; the server refused it
    finally:
        page.close()
    assert env_snapshot(probe_server) == before
    assert Path(probe_server.env_dir / f"{ENV}.json").is_file()
    assert os.path.getsize(probe_server.env_dir / f"{ENV}.json") > 0
