"""Visdom's offline web assets: detection, verification and a clear failure."""

from __future__ import annotations

import os

import pytest
from _support import free_port

from nectargan.visualizer.visdom import assets


def test_installed_assets_are_complete():
    assert assets.missing_assets() == []
    static = assets.visdom_static_dir()
    assert (static / "version.built").read_text().strip() == assets.visdom_version()
    assert (static / "js" / "plotly-plotly.min.js").stat().st_size > 1_000_000


def test_missing_files_and_stale_version_are_reported(tmp_path):
    missing = assets.missing_assets(tmp_path)
    assert "js/jquery.min.js" in missing
    assert "version.built" in missing
    assert len(missing) == len(assets.required_files(tmp_path)) + 1


def test_install_is_a_no_op_when_complete():
    lines = []
    assert assets.install_assets(log=lines.append) == []
    assert "already installed" in lines[0]


def test_unreachable_registry_gives_a_clear_error(tmp_path, monkeypatch):
    """npm pointed at a closed loopback port: the error says what failed."""
    monkeypatch.setenv("npm_config_registry", f"http://127.0.0.1:{free_port()}/")
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    with pytest.raises(assets.AssetInstallError, match="npm registry"):
        assets.install_assets(tmp_path / "static", timeout=60)
    assert not (tmp_path / "static" / "version.built").exists()


def test_missing_npm_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(assets.AssetInstallError, match="npm was not found"):
        assets.install_assets(tmp_path / "static")
    assert os.environ["PATH"] == str(tmp_path)
