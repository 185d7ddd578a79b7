"""``nectargan toolbox``: prints its URL with a token, loads no torch, stops on Ctrl-C."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from _toolbox import ToolboxProcess, make_root


def test_toolbox_starts_without_torch_and_stops_on_ctrl_c(tmp_path):
    root = make_root(tmp_path)
    box = ToolboxProcess(root, tmp_path / "state", tmp_path / "toolbox.log")
    try:
        assert len(box.token) == 48
        maps = Path(f"/proc/{box.proc.pid}/maps").read_text()
        assert "libtorch" not in maps
        assert box.client.get("/api/status").json()["roots"] == [str(root.resolve())]
        refused = box.client.get("/api/status", headers={"Authorization": "token wrong"})
        assert refused.status_code == 401
    finally:
        out = box.stop()
    assert box.proc.returncode == 0, out
    assert "Ctrl-C stops the Toolbox; training runs it started keep going." in out
    assert "Toolbox stopped." in out and "Traceback" not in out


def test_a_taken_port_and_a_missing_root_are_one_line_errors(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _toolbox(["--root", str(tmp_path), "--port", str(port)])
    assert out.returncode == 2
    assert out.stderr.startswith(f"nectargan toolbox: error: --port {port}: cannot listen")
    out = _toolbox(["--root", str(tmp_path / "missing")])
    assert out.returncode == 2 and "expected an existing folder" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_console_script_function_is_the_same_command(tmp_path):
    code = "import sys; sys.argv = ['nectargan-toolbox', '--port', '0']; "
    code += "from nectargan.cli.toolbox_cmd import run; run()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (
        out.returncode == 2 and "nectargan toolbox: error: --port: expected 1-65535" in out.stderr
    )


def _toolbox(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "nectargan", "toolbox", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)
