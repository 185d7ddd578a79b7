"""`nectargan data download` against a real loopback HTTP server serving archives we build."""

from __future__ import annotations

import io
import random
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from _support import wait_for
from PIL import Image

from nectargan.cli.main import main
from nectargan.dataset.download import DATASETS, download_dataset
from nectargan.dataset.transfer import DownloadError, TransferOptions

NAME = "facades"
FAST = TransferOptions(connect_timeout=5, read_timeout=5, retries=2, backoff=0)


def png_bytes(w: int = 16, h: int = 8, value: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (value, 2 * value % 256, 40)).save(buf, format="PNG")
    return buf.getvalue()


def build_archive(entries: dict[str, bytes | None], links: dict[str, str] | None = None) -> bytes:
    """A .tar.gz: name -> file bytes (None: a folder); ``links``: name -> symlink target."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def good_entries(name: str = NAME) -> dict[str, bytes | None]:
    entries: dict[str, bytes | None] = {f"{name}/": None}
    for split, n in (("train", 3), ("val", 2), ("test", 1)):
        entries[f"{name}/{split}/"] = None
        for i in range(n):
            entries[f"{name}/{split}/{i + 1}.png"] = png_bytes(value=10 * i + 50)
    # Big enough that a cut in the middle happens inside the stream, not in the headers.
    entries[f"{name}/README.txt"] = bytes(range(256)) * 400
    return entries


@dataclass
class Served:
    files: dict[str, bytes] = field(default_factory=dict)
    honour_range: bool = True
    cut_first: int = 0  # this many GETs send only half the body, then hang up
    hang: threading.Event | None = None  # set: send headers, then stall until it is set
    requests: list[tuple[str, str | None]] = field(default_factory=list)


def make_handler(state: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            rng = self.headers.get("Range")
            state.requests.append((self.path, rng))
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = 0
            if rng and state.honour_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.hang is not None:
                state.hang.wait(30)
                return
            if state.cut_first > 0:
                state.cut_first -= 1
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    state = Served()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/mirror", state
    if state.hang is not None:
        state.hang.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


def serve(state: Served, archive: bytes, name: str = NAME) -> None:
    state.files[f"/mirror/{name}.tar.gz"] = archive


def cli(*args: str) -> int:
    return main(["data", "download", *args])


def leftovers(root: Path) -> list[str]:
    """Anything download left beside the dataset folders (part files, staging folders)."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_good_archive_is_downloaded_unpacked_checked_and_counted(server, tmp_path, capsys):
    url, state = server
    serve(state, build_archive(good_entries()))
    root = tmp_path / "data"
    assert cli(NAME, "--root", str(root), "--url", url) == 0
    out, err = capsys.readouterr()
    assert "train 3, val 2, test 1" in out
    assert f"nectargan train --dataroot {root / NAME}" in out
    assert f"{NAME}:" in err and "MiB" in err  # plain progress lines: stderr is not a tty
    assert sorted(p.name for p in (root / NAME / "train").iterdir()) == ["1.png", "2.png", "3.png"]
    assert leftovers(root) == []


def test_already_downloaded_does_nothing_unless_forced(server, tmp_path, capsys):
    url, state = server
    serve(state, build_archive(good_entries()))
    root = str(tmp_path)
    assert cli(NAME, "--root", root, "--url", url) == 0
    assert cli(NAME, "--root", root, "--url", url) == 0
    assert "already downloaded" in capsys.readouterr().out
    assert len(state.requests) == 1
    assert cli(NAME, "--root", root, "--url", url, "--force") == 0
    assert len(state.requests) == 2


def test_base_url_from_the_environment(server, tmp_path, monkeypatch):
    url, state = server
    serve(state, build_archive(good_entries()))
    monkeypatch.setenv("NECTARGAN_DATASETS_URL", url + "/")
    assert cli(NAME, "--root", str(tmp_path)) == 0
    assert state.requests == [(f"/mirror/{NAME}.tar.gz", None)]


def test_unknown_name_lists_the_known_ones(tmp_path, capsys):
    assert cli("facadez", "--root", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'facadez'" in err and all(name in err for name in DATASETS)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("entries", "links", "message"),
    [
        ({f"{NAME}/train/../../evil.txt": b"x"}, None, "climbs out with '..'"),
        ({"/tmp/evil.txt": b"x"}, None, "is an absolute path"),
        ({"other/evil.txt": b"x"}, None, f"lies outside '{NAME}/'"),
        ({}, {f"{NAME}/train/link": "../../../outside"}, "links out of the dataset"),
        ({}, {f"{NAME}/train/abs": "/etc/passwd"}, "links out of the dataset"),
    ],
)
def test_unsafe_entries_refuse_the_whole_archive(server, tmp_path, capsys, entries, links, message):
    url, state = server
    serve(state, build_archive({**good_entries(), **entries}, links))
    root = tmp_path / "root"
    assert cli(NAME, "--root", str(root), "--url", url) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    bad = next(iter({**entries, **(links or {})}))
    assert f"'{bad}'" in err  # the entry is named
    assert not (root / NAME).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]  # nothing written outside
    assert leftovers(root) == []


def test_truncated_archive_leaves_nothing_that_looks_like_a_dataset(server, tmp_path, capsys):
    url, state = server
    archive = build_archive(good_entries())
    serve(state, archive[: len(archive) // 2])  # served whole: the file itself is cut
    assert cli(NAME, "--root", str(tmp_path), "--url", url) == 1
    err = capsys.readouterr().err
    assert "truncated or corrupt" in err and "Traceback" not in err
    assert not (tmp_path / NAME).exists() and leftovers(tmp_path) == []


def test_archive_without_train_split_is_refused(server, tmp_path, capsys):
    url, state = server
    serve(state, build_archive({f"{NAME}/test/1.png": png_bytes()}))
    assert cli(NAME, "--root", str(tmp_path), "--url", url) == 1
    assert "has no train/ folder" in capsys.readouterr().err
    assert not (tmp_path / NAME).exists() and leftovers(tmp_path) == []


def test_missing_archive_is_a_clear_error(server, tmp_path, capsys):
    url, _ = server
    assert cli(NAME, "--root", str(tmp_path), "--url", url) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_interrupted_transfer_resumes_with_a_range_request(server, tmp_path):
    url, state = server
    archive = build_archive(good_entries())
    serve(state, archive)
    state.cut_first = 1
    log = io.StringIO()
    result = download_dataset(NAME, tmp_path, url=url, options=FAST, stream=log)
    assert result.counts == {"train": 3, "val": 2, "test": 1}
    (_, first), (_, second) = state.requests
    assert first is None and second == f"bytes={len(archive) // 2}-"
    assert "retrying" in log.getvalue() and "resuming at" in log.getvalue()
    assert leftovers(tmp_path) == []


def test_partial_file_from_an_earlier_run_is_resumed(server, tmp_path):
    url, state = server
    archive = build_archive(good_entries())
    serve(state, archive)
    (tmp_path / f".{NAME}.tar.gz.part").write_bytes(archive[:1000])
    download_dataset(NAME, tmp_path, url=url, options=FAST, stream=io.StringIO())
    assert state.requests == [(f"/mirror/{NAME}.tar.gz", "bytes=1000-")]
    assert (tmp_path / NAME / "val" / "2.png").is_file()


def test_server_without_range_support_starts_again(server, tmp_path):
    url, state = server
    archive = build_archive(good_entries())
    serve(state, archive)
    state.honour_range = False
    (tmp_path / f".{NAME}.tar.gz.part").write_bytes(b"stale bytes of another file")
    log = io.StringIO()
    download_dataset(NAME, tmp_path, url=url, options=FAST, stream=log)
    assert "does not resume" in log.getvalue()
    assert (tmp_path / NAME / "train" / "1.png").is_file() and leftovers(tmp_path) == []


def test_retries_are_bounded_and_the_part_file_kept_for_later(server, tmp_path):
    url, state = server
    serve(state, build_archive(good_entries()))
    state.cut_first = 10
    with pytest.raises(DownloadError, match=r"failed after 3 attempt\(s\).*resume"):
        download_dataset(NAME, tmp_path, url=url, options=FAST, stream=io.StringIO())
    assert len(state.requests) == 3
    assert (tmp_path / f".{NAME}.tar.gz.part").stat().st_size > 0
    assert not (tmp_path / NAME).exists()


def test_a_stalled_server_times_out(server, tmp_path):
    url, state = server
    serve(state, build_archive(good_entries()))
    state.hang = threading.Event()
    opts = TransferOptions(connect_timeout=5, read_timeout=0.3, retries=1, backoff=0)
    with pytest.raises(DownloadError, match="failed after 2 attempt"):
        download_dataset(NAME, tmp_path, url=url, options=opts, stream=io.StringIO())
    assert len(state.requests) == 2


def test_progress_is_reported_and_cancel_keeps_the_part_for_a_resume(server, tmp_path):
    from nectargan.dataset.task import Cancelled, Task

    url, state = server
    entries = good_entries()
    # 3 MiB that gzip cannot shrink: the transfer takes several 1 MiB chunks.
    entries[f"{NAME}/noise.bin"] = random.Random(0).randbytes(3 << 20)
    archive = build_archive(entries)
    serve(state, archive)
    seen: list[tuple[str, int, int | None]] = []

    def watch(task: Task) -> None:  # a web page's progress bar, cancelling after 1 MiB
        seen.append((task.phase, task.done, task.total))
        if task.done >= 1 << 20:
            task.cancel()

    with pytest.raises(Cancelled, match=f"downloading {NAME} cancelled at"):
        download_dataset(
            NAME, tmp_path, url=url, options=FAST, stream=io.StringIO(), task=Task(watch)
        )
    assert seen[0] == (f"downloading {NAME}", 0, len(archive))
    kept = (tmp_path / f".{NAME}.tar.gz.part").stat().st_size
    assert 1 << 20 <= kept < len(archive) and not (tmp_path / NAME).exists()
    phases: list[str] = []
    result = download_dataset(
        NAME,
        tmp_path,
        url=url,
        options=FAST,
        stream=io.StringIO(),
        task=Task(lambda t: phases.append(f"{t.phase} {t.done}/{t.total}")),
    )
    assert result.counts == {"train": 3, "val": 2, "test": 1}
    assert state.requests[-1][1] == f"bytes={kept}-"
    assert f"downloading {NAME} {len(archive)}/{len(archive)}" in phases
    assert phases[-1].startswith("unpacking and checking")


def test_cancel_ends_a_read_stalled_on_the_server_at_once(server, tmp_path):
    from nectargan.dataset.task import Cancelled, Task

    url, state = server
    serve(state, build_archive(good_entries()))
    state.hang = threading.Event()  # headers, then nothing for 30 s
    slow = TransferOptions(connect_timeout=5, read_timeout=120, retries=3, backoff=0)
    task = Task()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            download_dataset(NAME, tmp_path, url=url, options=slow, stream=io.StringIO(), task=task)
        except BaseException as exc:  # noqa: BLE001 (the test reads it)
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    wait_for(lambda: state.requests, 30, what="the request")
    wait_for(lambda: task.phase.startswith("downloading"), 30, what="the headers")
    task.cancel()  # from another thread, as a web page's button does
    worker.join(20)  # far less than the 120 s read timeout
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled), outcome
    assert len(state.requests) == 1  # no retry after a cancel
