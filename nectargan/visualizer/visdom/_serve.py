"""Foreground Visdom server process, launched by ``nectargan visdom serve/start``.

Unlike ``python -m visdom.server`` it never downloads anything (it skips
Visdom's CDN step entirely), binds exactly the address it is given, and answers
only requests from its own origin under a host name it knows
(``origin_guard``: no other web site can change or delete what it holds).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

import tornado.routing
import tornado.web

from nectargan.visualizer.visdom.assets import assets_present
from nectargan.visualizer.visdom.origin_guard import HostPolicy
from nectargan.visualizer.visdom.server import MISSING_ASSETS_LINE


class RefusedHandler(tornado.web.RequestHandler):
    """Answers 403 with the reason, whatever the method (websocket upgrades included)."""

    def initialize(self, reason: str) -> None:
        self.reason = reason

    def prepare(self) -> None:
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"403 Forbidden: {self.reason}\n")


class GuardedRouter(tornado.routing.Router):
    """Checks every request before Visdom's own routing sees it."""

    def __init__(self, app: tornado.web.Application, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    def find_handler(self, request: Any, **kwargs: Any) -> Any:
        reason = self.policy.refusal(request.headers.get("Host"), request.headers.get("Origin"))
        if reason is not None:
            return self.app.get_handler_delegate(request, RefusedHandler, {"reason": reason})
        return self.app.find_handler(request, **kwargs)


def _login_credential() -> dict[str, str]:
    """Visdom's login, from environment variables only (a detached server has no terminal)."""
    from visdom.server.defaults import DEFAULT_ENV_PATH
    from visdom.utils.server_utils import hash_password

    username = os.environ.get("VISDOM_USERNAME")
    password = os.environ.get("VISDOM_PASSWORD")
    if not (username and password):
        sys.exit("--login needs VISDOM_USERNAME and VISDOM_PASSWORD in the environment")
    cookie_path = os.path.join(DEFAULT_ENV_PATH, "COOKIE_SECRET")
    if not os.path.isfile(cookie_path):
        cookie = os.environ.get("VISDOM_COOKIE")
        if not cookie:
            sys.exit("--login needs VISDOM_COOKIE (a secret string) the first time it is used")
        os.makedirs(DEFAULT_ENV_PATH, exist_ok=True)
        with open(cookie_path, "w") as fh:
            fh.write(cookie)
    return {"username": username, "password": hash_password(hash_password(password))}


def build_app(port: int, env_dir: str, credential: dict[str, str] | None) -> Any:
    """Visdom's tornado Application, without tornado's autoreload.

    Visdom 0.2.4 forces ``debug=True``, which turns autoreload on: every imported
    module's file is stat()ed twice a second (about 16 ms of CPU each second, taken
    from the training on the same cores; ``bench/dashboard_cost.py``), and the server
    re-executes itself, dropping envs not yet saved, whenever a package under it is
    upgraded or edited. Debug mode's other effects are left as Visdom wants them.
    """
    from visdom.server import app as visdom_app

    visdom_app.tornado_settings["autoreload"] = False  # debug only sets it when absent
    return visdom_app.Application(port=port, env_path=env_dir, user_credential=credential)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nectargan-visdom-server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--env-dir", required=True)
    parser.add_argument("--login", action="store_true")
    parser.add_argument("--allow-host", action="append", default=[])
    args = parser.parse_args(argv)

    # The server only moves JSON: Visdom's optional torch import would cost it ~1 s of
    # start-up and ~200 MB of memory, so it is made to fail (Visdom then goes without).
    sys.modules.setdefault("torch", None)
    from tornado import httpserver, ioloop

    try:
        policy = HostPolicy.for_bind(args.host, args.allow_host)
    except ValueError as exc:
        parser.error(str(exc))

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not assets_present():
        print(MISSING_ASSETS_LINE, flush=True)
    credential = _login_credential() if args.login else None
    env_dir = os.path.join(os.path.abspath(args.env_dir), "")
    os.makedirs(env_dir, exist_ok=True)
    app = build_app(args.port, env_dir, credential)
    http = httpserver.HTTPServer(GuardedRouter(app, policy), max_buffer_size=1024**3)
    http.listen(args.port, address=args.host)
    loop = ioloop.IOLoop.current()

    def _shutdown(signum, frame):  # noqa: ARG001 - signal handler signature
        loop.add_callback_from_signal(loop.stop)

    signal.signal(signal.SIGTERM, _shutdown)
    signal.signal(signal.SIGINT, _shutdown)
    print(
        f"Visdom server listening on http://{args.host}:{args.port} (envs in {env_dir})", flush=True
    )
    loop.start()


if __name__ == "__main__":
    main()
