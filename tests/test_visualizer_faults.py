"""VisdomVisualizer under failure: server killed and restarted, restarted unnoticed, stalled."""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable

import pytest
import torch
from test_visualizer_spec import connect

from nectargan.visualizer.visdom.visualizer import VisdomVisualizer


class StallProxy:
    """A TCP forwarder to a real server that can be told to stall.

    Stalled, it keeps every connection (open ones and new ones) open and
    passes nothing on: a server, pipe or proxy that accepts and never answers.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.stalled = threading.Event()
        self._closed = threading.Event()
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._socks.append(client)
            threading.Thread(target=self._pump, args=(client,), daemon=True).start()

    def _pump(self, client: socket.socket) -> None:
        if self.stalled.is_set():
            return  # hold the connection, answer nothing
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        self._socks.append(upstream)
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as sel:
            for s in peers:
                sel.register(s, selectors.EVENT_READ)
            while not self._closed.is_set() and not self.stalled.is_set():
                for key, _ in sel.select(timeout=0.05):
                    try:
                        data = key.fileobj.recv(65536)
                        if data:
                            peers[key.fileobj].sendall(data)
                            continue
                    except OSError:
                        pass
                    client.close()
                    upstream.close()
                    return

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for s in self._socks:
            s.close()


@pytest.fixture
def stall_proxy(visdom_server):
    proxy = StallProxy(visdom_server.port)
    yield proxy
    proxy.close()


def warnings_of(caplog, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "nectargan.visualizer"
        and r.levelno == logging.WARNING
        and text in r.getMessage()
    ]


class Loop:
    """A fake training loop: records what it sent and how long each update call took."""

    def __init__(self, vis: VisdomVisualizer) -> None:
        self.vis = vis
        self.step = 0
        self.sent: dict[str, tuple[list, list]] = {}
        self.slowest = 0.0
        self.blocked = 0  # calls that took longer than 0.2 s

    def run(self, steps: int, until: Callable[[], bool] = lambda: True, limit: float = 30) -> None:
        """At least ``steps`` iterations, then more until ``until()`` holds."""
        first, deadline = self.step, time.monotonic() + limit
        while self.step - first < steps or not until():
            assert time.monotonic() < deadline, "loop condition never met"
            i = self.step
            g = {"G_GAN": i / 7, "G_L1": float(i % 13)}
            d = {"D_real": -i / 3}
            for name, v in (g | d).items():
                self.sent.setdefault(name, ([], []))[0].append(float(i))
                self.sent[name][1].append(v)
            t0 = time.perf_counter()
            self.vis.update_loss_graphs(i, g, d)
            if i % 50 == 0:
                img = torch.full((1, 3, 16, 16), (i % 200) / 100 - 1)
                self.vis.update_images(img, img, img, f"step {i}", image_size=16)
            took = time.perf_counter() - t0
            self.slowest = max(self.slowest, took)
            self.blocked += took > 0.2
            self.step += 1
            time.sleep(0.002)


def test_server_killed_and_restarted_mid_run(private_visdom_server, env_name, caplog):
    srv = private_visdom_server
    caplog.set_level(logging.WARNING, logger="nectargan.visualizer")
    vis = connect(srv, env_name, update_interval=0.1, request_timeout=1.0)
    vis.start_thread()
    loop = Loop(vis)
    loop.run(200)
    vis.save()  # the restarted server will load this (by then stale) copy of the env
    loop.run(100, until=lambda: vis.stats.saves >= 1)
    killer = threading.Thread(target=srv.kill)
    killer.start()
    loop.run(200, until=lambda: not killer.is_alive() and vis.stats.outages == 1)
    restarter = threading.Thread(target=srv.start)
    restarter.start()
    loop.run(200, until=lambda: not restarter.is_alive() and vis.stats.connected)
    vis.stop_thread()

    assert loop.slowest < 0.5  # never waited for a request (1 s timeouts); margin for a busy CPU
    got = srv.line_series("loss_G", env_name) | srv.line_series("loss_D", env_name)
    assert got == loop.sent  # every point, before, during and after the outage
    stats = vis.stats
    assert stats.outages == 1 and stats.points_pending == 0 and stats.connected
    assert stats.points_delivered == stats.points_received
    assert srv.window("comparison_grid", env_name)["title"] == f"step {(loop.step - 1) // 50 * 50}"
    assert len(warnings_of(caplog, "lost")) == 1
    assert len(warnings_of(caplog, "is back")) == 1


def test_restart_between_sends_rebuilds_every_window(private_visdom_server, env_name, caplog):
    """A restart the client never saw fail (no request in between) still gets the whole dashboard."""
    srv = private_visdom_server
    caplog.set_level(logging.WARNING, logger="nectargan.visualizer")
    vis = connect(srv, env_name)
    img = torch.zeros(3, 8, 8)
    vis.update_images(img, img, img, "kept", image_size=8)
    for i in range(5):
        vis.update_loss_graphs(i, {"a": float(i)}, {"d": 0.5})
    srv.kill()
    srv.start()
    assert srv.window("comparison_grid", env_name) is None  # the new server knows nothing
    vis.update_loss_graphs(5, {"a": 5.0}, {"d": 0.5})
    assert srv.line_series("loss_G", env_name) == {"a": ([float(i) for i in range(6)],) * 2}
    assert srv.window("comparison_grid", env_name)["title"] == "kept"
    assert warnings_of(caplog, "lost") == []


def test_stalled_server_threaded_mode_never_blocks_training(stall_proxy, visdom_server, env_name):
    vis = VisdomVisualizer(
        env=env_name,
        server="http://127.0.0.1",
        port=stall_proxy.port,
        update_interval=0.1,
        request_timeout=(1.0, 1.0),
    )
    vis.start_thread()
    loop = Loop(vis)
    loop.run(50, until=lambda: vis.stats.points_delivered > 0)
    stall_proxy.stalled.set()
    loop.run(100, until=lambda: vis.stats.outages == 1)
    assert loop.slowest < 0.5  # never waited for a request (1 s timeouts)
    start = time.monotonic()
    vis.stop_thread(timeout=1.0)
    assert time.monotonic() - start < 1.5
    assert not vis.is_threaded


def test_stalled_server_single_thread_mode_is_bounded(stall_proxy, visdom_server, env_name, caplog):
    caplog.set_level(logging.WARNING, logger="nectargan.visualizer")
    vis = VisdomVisualizer(
        env=env_name, server="http://127.0.0.1", port=stall_proxy.port, request_timeout=(0.3, 0.3)
    )
    loop = Loop(vis)
    loop.run(5)
    stall_proxy.stalled.set()
    loop.run(150)
    assert loop.slowest < 0.3 * 2 + 0.3  # one request's bound (plus a fresh-connection retry)
    # Backoff: only the few calls that fall due for a retry try the stalled server at all.
    assert 1 <= loop.blocked <= 5
    assert len(warnings_of(caplog, "lost")) == 1
    stall_proxy.stalled.clear()
    vis.update_loss_graphs(10_000, {"G_GAN": 0.0}, {"D_real": 0.0})  # may still be backing off
    assert vis.flush(timeout=5.0)
    assert vis.stats.points_pending == 0
    got = visdom_server.line_series("loss_D", env_name)["D_real"][0]
    assert got == loop.sent["D_real"][0] + [10_000.0]
    assert len(warnings_of(caplog, "is back")) == 1


def test_constructor_against_a_stalled_server_fails_fast():
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        port = listener.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(ConnectionError, match="stalled"):
            VisdomVisualizer(env="x", server="http://127.0.0.1", port=port, request_timeout=1.0)
        assert time.monotonic() - start < 2.0
    finally:
        listener.close()
