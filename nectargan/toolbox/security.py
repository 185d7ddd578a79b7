"""The Toolbox's gate: it starts processes and reads files, so it is guarded like Jupyter.

Every request passes :class:`Guard` before any page sees it:

* **Host allowlist** (against DNS rebinding: a hostile page whose name resolves
  to 127.0.0.1 would otherwise talk to us as a same-origin page).
* **Token**: the one printed at start. Given once in the URL (``?token=``) it is
  exchanged for an HttpOnly, SameSite=Strict cookie and the URL is cleaned;
  scripts send ``Authorization: token ...``. Compared in constant time.
* **Origin**: a request that changes something, and every event stream, must
  come from our own origin. A cookie rides along with any request the browser
  makes, so the Origin is what tells our page from a foreign one; a request
  carrying the token in its Authorization header cannot be forged by another
  page (a browser never adds that header cross-site), so it may omit the Origin,
  but a foreign one present is still refused.
* **Headers** on every answer: a CSP that allows only our own origin (plus the
  Visdom frame), nosniff, a referrer only to our own origin (the token never
  leaks in a Referer to another site; ``no-referrer`` would make Chromium send
  ``Origin: null`` on our own form posts, which the Origin rule must refuse),
  and no framing of the Toolbox itself.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE_PREFIX = "nectargan-toolbox-"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
TOKEN_BYTES = 24


def new_token() -> str:
    """48 hex characters of the OS's randomness, as Jupyter does."""
    return secrets.token_hex(TOKEN_BYTES)


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so the answer's timing says nothing about the token."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def host_name(host_header: str) -> str:
    """``localhost:8765`` -> ``localhost``; ``[::1]:8765`` -> ``::1``; lower-cased."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass
class GuardSettings:
    """What the gate needs: the token, which Host names may reach us, the Visdom port."""

    token: str
    port: int
    allowed_hosts: frozenset[str] = LOOPBACK_NAMES
    visdom_port: Callable[[], int | None] = lambda: None
    cookie_secret: str = field(default_factory=new_token)

    @property
    def cookie_name(self) -> str:
        """One cookie per port, so two Toolboxes on one machine do not log each other out."""
        return f"{COOKIE_PREFIX}{self.port}"


def allowed_hosts_for(bind_host: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Loopback names always; the bound address when it is another one; ``extra`` names."""
    names = set(LOOPBACK_NAMES)
    if bind_host not in ("0.0.0.0", "::", ""):
        names.add(host_name(bind_host))
    names.update(host_name(h) for h in extra if h)
    return frozenset(names)


class Guard:
    """ASGI middleware applying the rules above before the app sees a request."""

    def __init__(self, app: ASGIApp, settings: GuardSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _RequestView(scope)
        refusal = self.refusal(request)
        if refusal is not None:
            status, text = refusal
            await _plain(send, status, text, self._headers(request))
            return
        if request.query_token is not None:  # exchange the URL token for a cookie, clean the URL
            await self._exchange(send, request)
            return
        await self.app(scope, receive, _with_headers(send, self._headers(request)))

    def refusal(self, request: _RequestView) -> tuple[int, str] | None:
        """Why this request is turned away (status, one line), or None to let it in."""
        if host_name(request.host) not in self.settings.allowed_hosts:
            return 403, f"refused: Host {request.host!r} is not one this Toolbox answers to"
        by_header = same_secret(request.header_token, self.settings.token)
        by_query = same_secret(request.query_token, self.settings.token)
        by_cookie = same_secret(
            request.cookie(self.settings.cookie_name), self.settings.cookie_secret
        )
        if not (by_header or by_query or by_cookie):
            return 401, "refused: no valid token (open the URL the Toolbox printed at start)"
        if request.path.startswith("/static/"):
            return None
        needs_origin = request.method not in SAFE_METHODS or request.is_event_stream
        if needs_origin:
            return _origin_problem(request, trusted_without_origin=by_header)
        return None

    async def _exchange(self, send: Send, request: _RequestView) -> None:
        cookie = (
            f"{self.settings.cookie_name}={self.settings.cookie_secret}; Path=/; HttpOnly; "
            "SameSite=Strict"
        )
        headers = self._headers(request) + [
            (b"location", request.url_without_token.encode("latin-1")),
            (b"set-cookie", cookie.encode("latin-1")),
        ]
        await _plain(send, 303, "signed in", headers)

    def _headers(self, request: _RequestView) -> list[tuple[bytes, bytes]]:
        csp = content_security_policy(request.host, [self.settings.visdom_port()])
        return [
            (b"content-security-policy", csp.encode("latin-1")),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
            (b"cache-control", b"no-store"),
        ]


def content_security_policy(host: str, visdom_ports: list[int | None]) -> str:
    """Our own origin only, plus Visdom frames on ``visdom_ports`` at the host the page was
    opened with (so a tunnel's address works); a page may add its run's own port."""
    name = host_name(host)
    name = f"[{name}]" if ":" in name else name
    ports = sorted({p for p in visdom_ports if isinstance(p, int) and 0 < p < 65536})
    frame = " ".join(f"http://{name}:{port}" for port in ports) or "'none'"
    return (
        f"default-src 'self'; img-src 'self' data:; frame-src {frame}; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _origin_problem(request: _RequestView, trusted_without_origin: bool) -> tuple[int, str] | None:
    origin = request.header("origin")
    if origin is None:
        if trusted_without_origin or request.header("sec-fetch-site") == "same-origin":
            return None
        return 403, "refused: a request that changes state needs an Origin header from this page"
    parts = urlsplit(origin)
    if parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower():
        return None
    return 403, f"refused: Origin {origin!r} is not this Toolbox"


class _RequestView:
    """The few parts of an ASGI scope the gate reads, decoded once."""

    def __init__(self, scope: Scope) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        self.host = self.headers.get("host", "")

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def header_token(self) -> str | None:
        scheme, _, value = (self.header("authorization") or "").partition(" ")
        return value.strip() if scheme.lower() == "token" else None

    @property
    def query_token(self) -> str | None:
        return next((v for k, v in self.query if k == "token"), None)

    def cookie(self, name: str) -> str | None:
        jar = SimpleCookie()
        try:
            jar.load(self.header("cookie") or "")
        except Exception:  # a malformed cookie header is simply no cookie
            return None
        morsel = jar.get(name)
        return morsel.value if morsel else None

    @property
    def is_event_stream(self) -> bool:
        return "text/event-stream" in (self.header("accept") or "") or self.path.endswith("/events")

    @property
    def url_without_token(self) -> str:
        rest = urlencode([(k, v) for k, v in self.query if k != "token"])
        return self.path + (f"?{rest}" if rest else "")


async def _plain(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *headers,
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    """Add the security headers to the app's answer (its own values of them win)."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", [])}
            message["headers"] = list(message.get("headers", [])) + [
                (k, v) for k, v in extra if k not in present
            ]
        await send(message)

    return wrapped
