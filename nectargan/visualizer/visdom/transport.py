"""HTTP to a Visdom server with real timeouts and failures that surface.

Visdom's own client posts synchronously with no timeout and, by default,
prints and swallows errors, so a stalled server freezes training and a dead
one goes unnoticed. This module replaces it for everything the visualizer
sends: one keep-alive ``http.client`` connection, a connect timeout and a read
timeout on every request, and a :class:`TransportError` for anything that is
not an HTTP 200 (refused, reset, timed out, HTTP error, login rejected).

``connection_count`` goes up each time a new TCP connection is opened. A
restarted server can never continue an old connection, so a new connection is
the engine's cue that the server may have lost (or reloaded stale copies of)
our windows and that they must all be sent again.

Every request the visualizer makes is idempotent (whole-window replace,
close, save), so when a *reused* keep-alive connection fails before a
response, the request is retried once on a fresh connection: that is how a
server-side idle close or a server restart looks. A timeout is never retried;
it means the server stalled.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import socket
import ssl
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote, urlsplit

from nectargan.utils.numbers import is_int, is_number

DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_READ_TIMEOUT = 5.0


class TransportError(Exception):
    """A request did not get an HTTP 200 from the server; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    """Where the server is: scheme, host, port and an optional base path."""

    scheme: str
    host: str
    port: int
    base_path: str = ""

    @classmethod
    def parse(cls, server: str, port: int) -> Endpoint:
        """Accept Visdom-style ``server`` strings: ``http://host``, ``host``, ``https://host/base``."""
        if not isinstance(server, str) or not server.strip():
            raise ValueError(f"server must be a non-empty URL string, got {server!r}")
        text = server.strip()
        if "://" not in text:
            text = "http://" + text
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"server must use http or https, got {server!r}")
        if not parts.hostname:
            raise ValueError(f"server has no host name: {server!r}")
        if not is_int(port) or not 0 < port < 65536:
            raise ValueError(f"port must be an integer in 1..65535, got {port!r}")
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base_path}"

    def env_url(self, env: str) -> str:
        """The page of env ``env`` in a browser; the name percent-quoted (the server unquotes)."""
        return f"{self.url}/env/{quote(env, safe='')}"


def _timeouts(value: float | tuple[float, float]) -> tuple[float, float]:
    """``request_timeout`` is one number for both phases or ``(connect, read)``."""
    pair = value if isinstance(value, tuple) else (value, value)
    if len(pair) != 2 or not all(is_number(v) and v > 0 and math.isfinite(v) for v in pair):
        raise ValueError(
            f"request_timeout must be a positive finite number or a (connect, read) pair, got {value!r}"
        )
    return float(pair[0]), float(pair[1])


class Transport:
    """One keep-alive connection to a Visdom server; not thread-safe (the engine serialises use)."""

    def __init__(
        self,
        endpoint: Endpoint,
        request_timeout: float | tuple[float, float] = (
            DEFAULT_CONNECT_TIMEOUT,
            DEFAULT_READ_TIMEOUT,
        ),
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("username and password must be given together")
        self.endpoint = endpoint
        self.connect_timeout, self.read_timeout = _timeouts(request_timeout)
        self._username = username
        # Visdom's server expects the client-side SHA-256 of the password (it hashes again).
        self._password_hash = (
            hashlib.sha256(password.encode("utf-8")).hexdigest() if password is not None else None
        )
        self._cookie: str | None = None
        self._conn: http.client.HTTPConnection | None = None
        self.connection_count = 0
        self.requests = 0  # posts asked for (a retried one counts once)
        self.bytes_sent = 0  # their bodies' bytes

    # -- public -------------------------------------------------------------

    def post(
        self, endpoint: str, body: bytes | str | dict[str, Any], timeout: float | None = None
    ) -> str:
        """POST ``body`` (JSON) to ``/<endpoint>``; return the response text or raise TransportError.

        ``timeout`` caps both phases for this request (used to honour deadlines).
        """
        data = _encode_body(body)
        self.requests += 1
        self.bytes_sent += len(data)
        for attempt in range(2):
            reused = self._conn is not None
            try:
                status, text = self._round_trip(endpoint, data, timeout)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 0 and reused and not isinstance(exc, TimeoutError):
                    continue  # stale keep-alive (idle close or server restart): one fresh try
                raise TransportError(_describe(exc, self.endpoint, endpoint)) from exc
            if status == 400 and self._username and attempt == 0:
                self._cookie = None  # login expired or the server restarted with a new secret
                self.close()
                continue
            if status != 200:
                raise TransportError(
                    f"HTTP {status} from {self.endpoint.url}/{endpoint}: {text[:200]!r}"
                )
            return text
        raise TransportError(f"{self.endpoint.url}/{endpoint} failed twice")  # pragma: no cover

    def close(self) -> None:
        """Drop the connection; the next request opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- internals ----------------------------------------------------------

    def _round_trip(self, endpoint: str, data: bytes, timeout: float | None) -> tuple[int, str]:
        conn = self._connection(timeout)
        if conn.sock is None:
            raise http.client.HTTPException("connection closed before the request")
        conn.sock.settimeout(_cap(self.read_timeout, timeout))
        headers = {"Content-Type": "application/json"}
        if self._cookie:
            headers["Cookie"] = self._cookie
        conn.request("POST", f"{self.endpoint.base_path}/{endpoint}", body=data, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        if resp.will_close:
            self.close()
        return resp.status, text

    def _connection(self, timeout: float | None) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = self._open(_cap(self.connect_timeout, timeout))
            if self._username and self._cookie is None:
                self._login(timeout)
            if self._conn.sock is None:  # the server closed the connection after the login
                self._conn = self._open(_cap(self.connect_timeout, timeout))
        return self._conn

    def _open(self, connect_timeout: float) -> http.client.HTTPConnection:
        ep = self.endpoint
        if ep.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                ep.host, ep.port, timeout=connect_timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(ep.host, ep.port, timeout=connect_timeout)
        conn.connect()
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection_count += 1
        return conn

    def _login(self, timeout: float | None) -> None:
        """Visdom's login: POST the credentials to the base URL, keep the cookie it sets."""
        conn = self._conn
        if conn is None or conn.sock is None:
            raise http.client.HTTPException("connection closed before the login")
        conn.sock.settimeout(_cap(self.read_timeout, timeout))
        body = json.dumps({"username": self._username, "password": self._password_hash})
        conn.request(
            "POST",
            f"{self.endpoint.base_path}/",
            body=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise http.client.HTTPException(f"Visdom login rejected (HTTP {resp.status})")
        cookie = SimpleCookie()
        for header in resp.headers.get_all("Set-Cookie") or []:
            cookie.load(header)
        self._cookie = "; ".join(f"{k}={m.value}" for k, m in cookie.items()) or None


def _encode_body(body: bytes | str | dict[str, Any]) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, allow_nan=False).encode("utf-8")


def _cap(limit: float, timeout: float | None) -> float:
    """The smaller of a configured limit and a caller's remaining time (never zero)."""
    return limit if timeout is None else max(0.05, min(limit, timeout))


def _describe(exc: BaseException, ep: Endpoint, endpoint: str) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer from {ep.url}/{endpoint} within the timeout (server stalled?)"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {ep.url} refused (no server listening)"
    return f"{type(exc).__name__} talking to {ep.url}/{endpoint}: {exc}"
