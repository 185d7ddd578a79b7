"""``nectargan visdom serve|start|stop|status|install-assets``."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from nectargan.cli.commands import add_command
from nectargan.visualizer.visdom import server
from nectargan.visualizer.visdom.assets import install_assets


def register(subparsers: argparse._SubParsersAction) -> None:
    visdom = subparsers.add_parser("visdom", help="run and manage the Visdom dashboard server")
    sub = visdom.add_subparsers(dest="visdom_command", metavar="ACTION", required=True)

    for name, func, helptext in (
        ("serve", cmd_serve, "run a server in the foreground (Ctrl-C stops it)"),
        ("start", cmd_start, "start a server in the background and wait until it answers"),
    ):
        _add_server_options(add_command(sub, name, func, help=helptext))

    p = add_command(sub, "stop", cmd_stop)
    p.add_argument("--port", type=int, default=server.DEFAULT_PORT)

    p = add_command(sub, "status", cmd_status)
    p.add_argument("--port", type=int, default=server.DEFAULT_PORT)
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add_command(sub, "install-assets", cmd_install_assets)
    p.add_argument("--force", action="store_true", help="re-fetch even when everything is present")


def _add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=server.DEFAULT_PORT, help="default: %(default)s")
    p.add_argument(
        "--host",
        default=server.DEFAULT_HOST,
        help="address to bind (default: %(default)s, this machine only); any other address "
        "needs --login or --insecure",
    )
    p.add_argument(
        "--env-dir",
        type=Path,
        default=None,
        help=f"where envs are persisted (default: {server.default_env_dir()})",
    )
    p.add_argument(
        "--login", action="store_true", help="require Visdom's login (VISDOM_USERNAME/PASSWORD)"
    )
    p.add_argument("--insecure", action="store_true", help="allow an open bind without login")
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name browsers may reach the server by, besides localhost and loopback "
        "addresses (and, beyond loopback, IP addresses); repeatable. Others get 403",
    )


def _options(args: argparse.Namespace) -> server.ServerOptions:
    opts = server.ServerOptions(
        port=args.port,
        host=args.host,
        env_dir=args.env_dir or server.default_env_dir(),
        login=args.login,
        insecure=args.insecure,
        allow_hosts=tuple(args.allow_host),
    )
    warning = opts.exposure_warning()
    if warning:
        print(warning, file=sys.stderr)
    return opts


def cmd_serve(args: argparse.Namespace) -> int:
    opts = _options(args)
    if server.probe(opts.host, opts.port) != "free":
        free = server.free_port_above(opts.host, opts.port)
        instead = f"; choose another with --port, e.g. --port {free} (free now)" if free else ""
        raise server.ServerError(f"port {opts.port} is already in use{instead}")
    from nectargan.utils.outputs import output_dir
    from nectargan.visualizer.visdom import _serve

    output_dir(opts.env_dir, server.ENV_DIR_WHAT)

    argv = opts.command()[3:]  # drop "python -m module"
    _serve.main(argv)
    return 0


def _warn_other_env_dir(args: argparse.Namespace, record: server.ServerRecord) -> None:
    """A reused server keeps its own env folder; an --env-dir that differs is not silently lost."""
    if args.env_dir is None or record.pid < 0:  # not asked for, or not ours (folder unknown)
        return
    if Path(record.env_dir).resolve() != Path(args.env_dir).resolve():
        print(
            f"warning: that server keeps its envs in {record.env_dir}, not --env-dir "
            f"{args.env_dir}; to use {args.env_dir}, stop it first "
            f"(nectargan visdom stop --port {args.port}) or pick another --port",
            file=sys.stderr,
        )


def cmd_start(args: argparse.Namespace) -> int:
    opts = _options(args)
    record, started = server.start(opts)
    if not started:
        print(f"A Visdom server already answers on port {opts.port}; reusing it: {record.url}")
        _warn_other_env_dir(args, record)
        return 0
    if not server.assets_present():
        print(server.MISSING_ASSETS_LINE, file=sys.stderr)
    print(
        f"Visdom server started (pid {record.pid}, envs in {record.env_dir}, log {record.log_file})"
    )
    print(record.url)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """stop the background server started on a port"""
    if server.stop(args.port):
        print(f"Visdom server on port {args.port} stopped")
        return 0
    # Nothing of ours to stop. Either the wish already holds (no server: exit 0, like
    # stopping a stopped service) or a server we did not start keeps running (an error).
    if server.probe(server.DEFAULT_HOST, args.port) == "visdom":
        raise server.ServerError(
            f"the Visdom server on port {args.port} was not started by nectargan (no pid "
            "record), so it was left running; stop it where it was started"
        )
    print(f"no Visdom server is running on port {args.port}; nothing to stop")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """is a server running? pid, port, url, env dir, assets"""
    st = server.status(args.port)
    if args.json:
        print(json.dumps(asdict(st), indent=2))
    else:
        state = "running" if st.running else "not running"
        if st.answering == "other":
            state = "port taken by something that is not Visdom"
        print(f"Visdom server: {state}")
        print(f"  port:    {st.port}")
        print(f"  url:     {st.url}")
        print(f"  pid:     {st.pid if st.pid is not None else '-'}")
        print(f"  env dir: {st.env_dir or '-'}")
        print(f"  log:     {st.log_file or '-'}")
        print(
            f"  assets:  {'installed' if st.assets_installed else 'MISSING (nectargan visdom install-assets)'}"
        )
    return 0 if st.running else 3


def cmd_install_assets(args: argparse.Namespace) -> int:
    """fetch the dashboard's web assets from the npm registry"""
    install_assets(force=args.force)
    return 0
