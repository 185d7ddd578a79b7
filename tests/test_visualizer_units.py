"""VisdomVisualizer's parts on their own: series downsampling, transport, login, image grid."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from _support import free_port
from hypothesis import given, settings
from hypothesis import strategies as st

from nectargan.visualizer.visdom.images import Triplet, render_grid
from nectargan.visualizer.visdom.series import JsonColumn, Series
from nectargan.visualizer.visdom.transport import Endpoint, Transport, TransportError
from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

ys_strategy = st.lists(
    st.one_of(
        st.floats(-1e6, 1e6, allow_nan=False),
        st.sampled_from([math.nan, math.inf, -math.inf]),
    ),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(ys=ys_strategy, max_points=st.integers(2, 40))
def test_series_bounded_exact_then_means(ys, max_points):
    s = Series(max_points)
    for i, y in enumerate(ys):
        s.add(float(i), y)
    xs_shown, ys_shown = s.points()
    even = max_points - max_points % 2
    assert len(xs_shown) == len(s) <= even
    assert s.gaps == sum(not math.isfinite(y) for y in ys)
    x_text, y_text = s.x_json(), s.y_json()
    assert "NaN" not in y_text and "Infinity" not in y_text
    assert json.loads(f"[{x_text}]") == xs_shown
    assert json.loads(f"[{y_text}]") == ys_shown
    if len(ys) <= even:  # exact: every point as given, gaps as None
        assert xs_shown == [float(i) for i in range(len(ys))]
        assert ys_shown == [y if math.isfinite(y) else None for y in ys]
    else:  # bucket means of a power-of-two width, in order, covering every raw point
        assert s.width & (s.width - 1) == 0 and s.width > 1
        assert xs_shown == sorted(xs_shown)
        assert xs_shown[0] == (s.width - 1) / 2
        assert len(xs_shown) == math.ceil(len(ys) / s.width)


def test_series_mean_of_buckets_skips_gaps():
    s = Series(2)
    for x, y in [(0, 1.0), (1, math.nan), (2, 3.0), (3, 5.0), (4, math.nan), (5, math.nan)]:
        s.add(float(x), y)
    assert s.width == 4
    assert s.points() == ([1.5, 4.5], [3.0, None])


def test_json_column_blocks():
    col = JsonColumn()
    for i in range(1500):
        col.append(str(i))
    assert json.loads("[" + col.join('"x"') + "]") == [*range(1500), "x"]
    col.clear()
    assert col.join() == ""


@pytest.mark.parametrize(
    ("server", "port", "url"),
    [
        ("http://localhost", 8097, "http://localhost:8097"),
        ("localhost", 1, "http://localhost:1"),
        ("https://example.org/visdom/", 443, "https://example.org:443/visdom"),
        ("http://[::1]", 80, "http://[::1]:80"),
    ],
)
def test_endpoint_parse(server, port, url):
    assert Endpoint.parse(server, port).url == url


def test_transport_refused_and_stalled_are_transport_errors():
    t = Transport(Endpoint.parse("127.0.0.1", free_port()), request_timeout=0.5)
    with pytest.raises(TransportError, match="refused"):
        t.post("events", {})
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        t = Transport(Endpoint.parse("127.0.0.1", listener.getsockname()[1]), (0.5, 0.3))
        start = time.monotonic()
        with pytest.raises(TransportError, match="stalled"):
            t.post("events", {})
        assert time.monotonic() - start < 1.0
    finally:
        listener.close()


class FakeVisdom(BaseHTTPRequestHandler):
    """Just enough of Visdom's login: POST / sets a cookie, other endpoints need it (else 400)."""

    seen: list[tuple[str, str | None]] = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        cookie = self.headers.get("Cookie")
        self.seen.append((self.path, cookie))
        if self.path == "/":
            ok = body == {"username": "ada", "password": _sha("secret")}
            self._reply(200 if ok else 400, {"Set-Cookie": "user_password=token; Path=/"})
        elif self.path == "/nope":
            self._reply(404)
        else:
            self._reply(200 if cookie == "user_password=token" else 400)

    def _reply(self, status: int, headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def fake_visdom():
    FakeVisdom.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeVisdom)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_login_cookie_is_sent(fake_visdom):
    t = Transport(Endpoint.parse("127.0.0.1", fake_visdom), 1.0, username="ada", password="secret")
    t.post("events", {"x": 1})
    assert FakeVisdom.seen == [("/", None), ("/events", "user_password=token")]
    with pytest.raises(TransportError, match="HTTP 404"):
        t.post("nope", {})


def test_login_rejected_is_a_connection_error(fake_visdom):
    with pytest.raises(ConnectionError, match="login rejected"):
        VisdomVisualizer(
            server="http://127.0.0.1", port=fake_visdom, username="ada", password="wrong"
        )


def test_something_else_on_the_port_is_a_connection_error(fake_visdom):
    with pytest.raises(ConnectionError, match="HTTP 400"):
        VisdomVisualizer(server="http://127.0.0.1", port=fake_visdom)


def test_grid_geometry():
    x = torch.zeros(5, 3, 10, 20)
    t = Triplet(x[:2], x[:2], x[:2], "t", 12)
    grid = render_grid(t)
    assert grid.shape == (2 * 12 + 2, 3 * 12 + 4, 3)
    assert grid.dtype.name == "uint8"


@settings(max_examples=30, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), seed=st.integers(0, 2**16))
def test_png_encoder_round_trips(h, w, seed):
    import io

    import numpy as np
    from PIL import Image

    from nectargan.visualizer.visdom.encoding import png_bytes

    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(rgb))).convert("RGB"))
    assert (decoded == rgb).all()
