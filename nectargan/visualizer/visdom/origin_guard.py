"""Keep other web sites away from the Visdom server we run.

Visdom answers any request: a page on any site the user has open can POST a
"simple" ``text/plain`` request to ``/delete_env`` (browsers send those
cross-origin without asking) or open its websocket, and a host name that
resolves to 127.0.0.1 (DNS rebinding) makes the page same-origin with it. The
guard (``HostPolicy``, applied by ``_serve.GuardedRouter`` before Visdom's own
routing) answers 403 when

- the ``Host`` header names neither a loopback address, ``localhost``, a name
  given with ``--allow-host`` nor (on a non-loopback bind) an IP address: a
  rebinding page always arrives under its own DNS name;
- the request carries an ``Origin`` that is not the server's own
  (``http(s)://`` + the ``Host`` it was reached by). The Python client sends no
  Origin on HTTP and its own URL on the websocket; the dashboard page sends its
  own origin; so neither is affected.

The Origin rule applies to every route, not only the ones that change state:
nothing legitimate reads Visdom cross-origin (it sends no CORS headers, so such
a read could never be used), and one rule cannot miss a route. ``ROUTES`` says
what each route Visdom 0.2.4 registers does; a test fails when Visdom's list
changes, so a new route is looked at rather than assumed safe.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Every route of visdom 0.2.4's Application (base_url ""; the first three are tornado's
# static files), with what a request to it can do.
ROUTES: dict[str, str] = {
    r"/(robots\.txt)": "GET: a static file",
    r"/(favicon\.ico)": "GET: a static file",
    "/static/(.*)": "GET: the page's scripts, styles and fonts",
    "/events": "POST: creates or replaces a window",
    "/update": "POST: appends to or replaces a window's data",
    "/close": "POST: closes a window (all of an env's windows without 'win')",
    "/socket": "websocket of the page: close windows, delete envs, save, layouts",
    "/socket_wrap": "GET opens a polling socket; POST sends it the page's commands",
    "/vis_socket": "websocket of the Python client (window events)",
    "/vis_socket_wrap": "POST: polling form of /vis_socket",
    "/env/(.*)": "GET: the env page; POST: creates an env, loads one into a socket",
    "/compare/(.*)": "GET: the compare page; POST: loads envs into a socket",
    "/save": "POST: writes envs to the env folder",
    "/error/(.*)": "GET: raises an error on purpose (Visdom's test page)",
    "/win_exists": "POST: reads whether a window exists",
    "/win_data": "POST: reads a window, or with 'data' replaces it",
    "/delete_env": "POST: deletes an env and its saved file",
    "/win_hash": "POST: reads a window's hash",
    "/env_state": "POST: reads the list of envs",
    "/fork_env": "POST: copies an env under a new name and saves it",
    "/user/(.*)": "GET: the user's style sheet",
    "(.*)": "GET: the index page; POST: signs in (--login)",
}

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.IGNORECASE)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def check_allow_host(name: str) -> str:
    """An ``--allow-host`` value, lower-cased; ValueError names what is wrong."""
    text = name.strip().lower()
    if _ip(text) is None and not _HOST_NAME.match(text):
        raise ValueError(
            f"--allow-host {name!r} is not a host name: expected a name such as mybox.lan "
            "(or an address), without scheme, port or path"
        )
    return text


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header, lower-cased, without port or IPv6 brackets."""
    text = host_header.strip().lower()
    if text.startswith("["):
        return text[1:].split("]", 1)[0]
    if text.count(":") == 1:
        return text.split(":", 1)[0]
    return text


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` names a server bound to ``bind`` answers to."""

    bind: str
    allowed: frozenset[str] = frozenset()

    @classmethod
    def for_bind(cls, bind: str, allow_hosts: Iterable[str] = ()) -> HostPolicy:
        return cls(bind, frozenset(check_allow_host(h) for h in allow_hosts))

    @property
    def loopback_bind(self) -> bool:
        ip = _ip(self.bind)
        return self.bind == "localhost" or (ip is not None and ip.is_loopback)

    def host_allowed(self, host_header: str) -> bool:
        name = host_name(host_header)
        ip = _ip(name)
        if name == "localhost" or (ip is not None and ip.is_loopback) or name in self.allowed:
            return True
        # Beyond loopback the user reaches us by an address we cannot list; a rebinding
        # page never can (its Host is the attacker's DNS name).
        return ip is not None and not self.loopback_bind

    def refusal(self, host_header: str | None, origin: str | None) -> str | None:
        """Why a request is refused, or None when it may go on to Visdom."""
        host = host_header or ""
        if not self.host_allowed(host):
            hint = "" if self.loopback_bind else " (start the server with --allow-host NAME)"
            return f"Host {host!r} is not a name this Visdom server answers to{hint}"
        if origin is not None and origin.lower() not in (
            f"http://{host.lower()}",
            f"https://{host.lower()}",
        ):
            return f"Origin {origin!r} is not this Visdom server's own (http://{host})"
        return None
