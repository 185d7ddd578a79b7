"""Stream one URL to a ``.part`` file: resume by HTTP Range, timeouts, bounded retries.

``http.client`` directly rather than urllib, for two separate timeouts (connect and
each read) and full control over Range/Content-Range handling; no third-party HTTP
library is needed for one GET.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from nectargan.dataset.task import Task, tick
from nectargan.errors import DataUserError
from nectargan.utils.durations import format_duration

CHUNK = 1 << 20
MAX_REDIRECTS = 5
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class DownloadError(DataUserError):
    """The transfer failed for good (after retries) or the server refused it."""

    exit_code = 1


@dataclass(frozen=True)
class TransferOptions:
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    retries: int = 5  # further attempts after the first one fails
    backoff: float = 1.0  # seconds before the first retry, doubled after each


def mib(n: float) -> str:
    return f"{n / (1 << 20):.1f} MiB"


class ByteProgress:
    """Bytes, rate and ETA: redrawn in place on a terminal, plain lines in a log."""

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        log_every: float = 5.0,
        task: Task | None = None,
    ) -> None:
        self.label = label
        self.task = task  # a watcher's progress bar and cancel button (e.g. a web page)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = 0.2 if self.tty else log_every
        self.total: int | None = None
        self.done = self.start_bytes = 0
        self.started = time.monotonic()
        self._last = -float("inf")

    def begin(self, done: int, total: int | None) -> None:
        self.done = self.start_bytes = done
        self.total, self.started = total, time.monotonic()
        tick(self.task, done, total, f"downloading {self.label}")
        if done:
            self._line(f"resuming at {mib(done)}")

    def advance(self, n: int) -> None:
        self.done += n
        tick(self.task, self.done)  # raises Cancelled; the part file stays for a resume
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._draw(now)

    def interrupt_on_cancel(self, conn: http.client.HTTPConnection) -> Callable[[], None]:
        """A cancel shuts the connection down, so a read stalled on the server ends now."""
        if self.task is None:
            return lambda: None

        def shut() -> None:
            with contextlib.suppress(OSError, AttributeError):
                conn.sock.shutdown(socket.SHUT_RDWR)

        return self.task.on_cancel(shut)

    def finish(self) -> None:
        self._draw(time.monotonic())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = (self.done - self.start_bytes) / elapsed
        text = f"{self.label}: {mib(self.done)}"
        if self.total:
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            pct = 100 * self.done / self.total
            text += f" / {mib(self.total)} ({pct:.0f}%), {mib(rate)}/s, ETA {format_duration(eta)}"
        else:
            text += f", {mib(rate)}/s"
        if self.tty:
            self.stream.write("\r" + text.ljust(79))
            self.stream.flush()
        else:
            self._line(text)

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r")
        print(text, file=self.stream, flush=True)


class _Retry(Exception):
    """This attempt failed in a way another attempt may fix."""


def _connect(url: str, opts: TransferOptions, headers: dict[str, str]):
    """GET ``url``, following redirects; returns (connection, response, final url)."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DownloadError(f"cannot download '{url}': expected an http:// or https:// URL")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=opts.connect_timeout)
        try:
            conn.connect()
            conn.sock.settimeout(opts.read_timeout)
            path = parts.path or "/"
            conn.request("GET", path + (f"?{parts.query}" if parts.query else ""), headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _Retry(f"{type(exc).__name__}: {exc}") from exc
        if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
            url = urllib.parse.urljoin(url, resp.getheader("Location"))
            conn.close()
            continue
        return conn, resp, url
    raise DownloadError(f"cannot download '{url}': more than {MAX_REDIRECTS} redirects")


_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def _attempt(url: str, part: Path, opts: TransferOptions, progress: ByteProgress) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "nectargan", "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    conn, resp, url = _connect(url, opts, headers)
    forget = progress.interrupt_on_cancel(conn)
    try:
        if resp.status == 416 and have:
            # Asked past the end: the part file is complete or not this file at all.
            m = re.fullmatch(r"bytes \*/(\d+)", resp.getheader("Content-Range") or "")
            if m and int(m.group(1)) == have:
                return
            part.unlink()
            raise _Retry("the partial file does not match the server's; starting again")
        if resp.status in RETRY_STATUS:
            raise _Retry(f"HTTP {resp.status} {resp.reason}")
        if resp.status == 206:
            m = _CONTENT_RANGE.fullmatch(resp.getheader("Content-Range") or "")
            if not m or int(m.group(1)) != have:
                part.unlink(missing_ok=True)
                raise _Retry("the server answered a different byte range; starting again")
            total = None if m.group(3) == "*" else int(m.group(3))
            mode = "ab"
        elif resp.status == 200:
            if have:
                print("server does not resume downloads; starting again", file=progress.stream)
            have, mode = 0, "wb"
            length = resp.getheader("Content-Length")
            total = int(length) if length and length.isdigit() else None
        else:
            raise DownloadError(f"cannot download '{url}': HTTP {resp.status} {resp.reason}")
        progress.begin(have, total)
        received = have
        with part.open(mode) as out:
            while True:
                try:
                    chunk = resp.read(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Retry(f"connection lost at {mib(received)}: {exc}") from exc
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                progress.advance(len(chunk))
        if total is not None and received < total:
            raise _Retry(f"connection closed at {mib(received)} of {mib(total)}")
        progress.finish()
    finally:
        forget()
        conn.close()


def download_to_part(
    url: str,
    part: Path,
    opts: TransferOptions | None = None,
    progress: ByteProgress | None = None,
    wait: Callable[[float], None] = time.sleep,
) -> Path:
    """Fetch ``url`` into ``part``, appending to what is already there when the server allows."""
    opts = opts or TransferOptions()
    progress = progress or ByteProgress(part.name)
    delay = opts.backoff
    for attempt in range(opts.retries + 1):
        try:
            _attempt(url, part, opts, progress)
            return part
        except _Retry as exc:
            tick(progress.task, progress.done)  # cancelled: stop here, the part file kept
            if attempt == opts.retries:
                raise DownloadError(
                    f"download of '{url}' failed after {attempt + 1} attempt(s): {exc}; "
                    f"run the command again to resume from {part}"
                ) from None
            print(f"{exc}; retrying ({attempt + 1}/{opts.retries})", file=progress.stream)
            wait(delay)
            delay *= 2
    raise AssertionError("unreachable")
