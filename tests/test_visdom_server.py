"""The managed server: start/stop/status, binding, refusals, missing assets."""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _support import TestServer, free_port, wait_for

from nectargan.visualizer.visdom import server


def nectargan(
    *args: str, env: dict | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nectargan", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def non_loopback_addresses() -> list[str]:
    """IPv4 addresses of this host other than 127.x (may be empty in a bare sandbox)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return [a for a in out if ":" not in a and not a.startswith("127.")]


@pytest.fixture
def port():
    p = free_port()
    yield p
    nectargan("visdom", "stop", "--port", str(p))


def test_start_status_stop_cycle(port, tmp_path):
    env_dir = tmp_path / "envs"
    res = nectargan("visdom", "start", "--port", str(port), "--env-dir", str(env_dir))
    assert res.returncode == 0, res.stderr
    assert f"http://127.0.0.1:{port}" in res.stdout
    assert server.probe("127.0.0.1", port) == "visdom"

    status = nectargan("visdom", "status", "--port", str(port), "--json")
    assert status.returncode == 0
    info = json.loads(status.stdout)
    assert info["running"] is True
    assert info["port"] == port
    assert info["env_dir"] == str(env_dir.resolve())
    assert info["pid"] > 0
    assert info["assets_installed"] is True

    again = nectargan("visdom", "start", "--port", str(port))
    assert again.returncode == 0
    assert "reusing" in again.stdout
    assert "warning" not in again.stderr
    # Before: another --env-dir on a running port was dropped without a word.
    other = nectargan("visdom", "start", "--port", str(port), "--env-dir", str(tmp_path / "b"))
    assert other.returncode == 0 and "reusing" in other.stdout
    assert f"keeps its envs in {env_dir.resolve()}, not --env-dir {tmp_path / 'b'}" in other.stderr

    stop = nectargan("visdom", "stop", "--port", str(port))
    assert stop.returncode == 0, stop.stdout
    wait_for(lambda: server.probe("127.0.0.1", port, timeout=0.2) == "free", 10, what="server gone")
    wait_for(lambda: not server.pid_alive(info["pid"]), 10, what="process gone")
    status = nectargan("visdom", "status", "--port", str(port))
    assert status.returncode == 3
    assert "not running" in status.stdout
    # Stopping again: nothing to stop is the state asked for (before: exit 1, the bug status).
    again = nectargan("visdom", "stop", "--port", str(port))
    assert again.returncode == 0 and "nothing to stop" in again.stdout, again


def test_stop_leaves_a_server_it_did_not_start_with_an_error(visdom_server):
    """A Visdom server without our pid record keeps running: one error line, exit 2."""
    res = nectargan("visdom", "stop", "--port", str(visdom_server.port))
    assert res.returncode == 2, res
    assert res.stderr.startswith("nectargan visdom stop: error: the Visdom server on port")
    assert "not started by nectargan" in res.stderr
    assert server.probe("127.0.0.1", visdom_server.port) == "visdom"


def test_background_server_is_detached_with_log_file(port, tmp_path):
    res = nectargan("visdom", "start", "--port", str(port), "--env-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    record = server.read_record(port)
    assert record is not None
    # Own session (Ctrl-C in the starting terminal does not reach it), output to a file.
    assert os.getsid(record.pid) == record.pid
    stdout_target = os.readlink(f"/proc/{record.pid}/fd/1")
    assert stdout_target == record.log_file
    assert "listening" in Path(record.log_file).read_text()


def test_default_bind_is_loopback_only(port, tmp_path):
    assert (
        nectargan("visdom", "start", "--port", str(port), "--env-dir", str(tmp_path)).returncode
        == 0
    )
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
    if listening.returncode == 0 and listening.stdout.strip():
        local_addrs = [line.split()[3] for line in listening.stdout.strip().splitlines()]
        assert local_addrs == [f"127.0.0.1:{port}"], local_addrs
    for addr in non_loopback_addresses():
        with pytest.raises(OSError), socket.create_connection((addr, port), timeout=2):
            pass


def test_open_bind_refused_without_login_or_insecure(port):
    res = nectargan("visdom", "start", "--port", str(port), "--host", "0.0.0.0")
    assert res.returncode == 2
    assert "--login" in res.stderr and "--insecure" in res.stderr
    assert server.probe("127.0.0.1", port) == "free"


def test_open_bind_with_insecure_warns_and_listens_everywhere(port, tmp_path):
    res = nectargan(
        "visdom",
        "start",
        "--port",
        str(port),
        "--host",
        "0.0.0.0",
        "--insecure",
        "--env-dir",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    assert "warning" in res.stderr and "WITHOUT any login" in res.stderr
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True)
    if listening.returncode == 0 and listening.stdout.strip():
        assert f"0.0.0.0:{port}" in listening.stdout


def test_port_taken_by_something_else_is_a_clear_error(port):
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        res = nectargan("visdom", "start", "--port", str(port))
    assert res.returncode == 2
    assert f"port {port}" in res.stderr and "not a Visdom server" in res.stderr
    proposed = int(re.search(r"e\.g\. --port (\d+) \(free now\)", res.stderr).group(1))
    assert proposed != port and server.probe("127.0.0.1", proposed) == "free"
    assert ".." not in res.stderr


@pytest.mark.parametrize("command", ["start", "serve"])
def test_env_dir_that_is_a_file_is_named_and_nothing_starts(port, tmp_path, command):
    # Before: a FileExistsError / NotADirectoryError traceback (exit 1).
    plain = tmp_path / "plain"
    plain.write_text("x")
    for env_dir in (plain, plain / "envs"):
        res = nectargan("visdom", command, "--port", str(port), "--env-dir", str(env_dir))
        assert res.returncode == 2 and "Traceback" not in res.stderr
        assert f"Visdom env folder '{env_dir}'" in res.stderr
    assert server.probe("127.0.0.1", port) == "free"


def test_bad_port_is_named():
    res = nectargan("visdom", "start", "--port", "70000")
    assert res.returncode == 2
    assert "70000" in res.stderr


def test_server_starts_without_assets_and_says_how_to_install(tmp_path):
    """With visdom's static dir hidden, the API still answers and one line says what to do."""
    port = free_port()
    # A sitecustomize that points the assets check at an empty static dir.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import nectargan.visualizer.visdom.assets as a, pathlib\n"
        f"a.visdom_static_dir = lambda: pathlib.Path({str(tmp_path / 'empty')!r})\n"
    )
    env = {"PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])}
    try:
        res = nectargan(
            "visdom", "start", "--port", str(port), "--env-dir", str(tmp_path / "e"), env=env
        )
        assert res.returncode == 0, res.stderr
        assert res.stderr.count("nectargan visdom install-assets") == 1
        assert "cannot render" in res.stderr
        assert server.probe("127.0.0.1", port) == "visdom"
        log = Path(server.read_record(port).log_file).read_text()
        assert "cannot render" in log
    finally:
        nectargan("visdom", "stop", "--port", str(port))


def test_a_changed_module_file_does_not_restart_the_server(tmp_path, monkeypatch):
    """Visdom forces tornado's debug mode, whose autoreload restarted the server as soon as
    any module it had imported changed on disk (a package upgrade, an edit), dropping the
    envs it had not saved yet; it also cost ~16 ms of CPU a second checking the files."""
    watched = tmp_path / "site" / "sitecustomize.py"  # imported by the server at start
    watched.parent.mkdir()
    watched.write_text("")
    monkeypatch.setenv("PYTHONPATH", str(watched.parent))
    srv = TestServer(tmp_path / "envs").start()
    try:
        srv.client("unsaved").text("kept", win="note")
        stamps = itertools.count(time.time() + 10)

        def touch_then_look() -> bool:  # a new mtime each time: the watcher's first look
            stamp = next(stamps)  # only records what it sees, every later one compares
            os.utime(watched, (stamp, stamp))
            return "modified; restarting server" in srv.log_path.read_text()

        with pytest.raises(AssertionError, match="timed out"):  # autoreload looks every 0.5 s
            wait_for(touch_then_look, 2.0, interval=0.1, what="a restart")
        assert srv.proc.poll() is None
        assert srv.window("note", "unsaved")["content"] == "kept"
    finally:
        srv.stop()
