"""The Toolbox starts lean: no torch, numpy, pydantic or PIL until a page that needs them is
asked for; those pages are imported on their first request and behave as if loaded at start.

Start-up *time* is a benchmark (bench/toolbox.py), not a test; what is tested here is what
makes it fast: which modules are loaded, and that loading pages late changes nothing seen.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

from _toolbox import TOKEN, api_client, browser_client, make_root, toolbox_app, write_experiment

from nectargan.cli.main import build_parser
from nectargan.toolbox.pages import LAZY_PAGES, PAGE_MODULES

HEAVY = ("torch", "numpy", "pydantic", "PIL")

# Run in a fresh interpreter: the test process itself has long imported all of them.
PROBE = """
import json, sys, warnings
from pathlib import Path
warnings.simplefilter("ignore")
from nectargan.cli.main import FAST_COMMANDS, build_parser
args = build_parser((FAST_COMMANDS["toolbox"],)).parse_args(["toolbox", "--root", sys.argv[1]])
from nectargan.toolbox.app import create_app
from nectargan.toolbox.context import ToolboxOptions
from nectargan.toolbox.paths import resolve_roots
from starlette.testclient import TestClient

HEAVY = {heavy!r}
def loaded():
    return sorted({{m.split(".")[0] for m in sys.modules}} & set(HEAVY))

options = ToolboxOptions(roots=resolve_roots(args.root), state_dir=Path(sys.argv[2]),
                         token={token!r}, background=False)
app = create_app(options)
seen = {{"built": loaded()}}
client = TestClient(app, base_url="http://127.0.0.1:8765",
                    headers={{"Authorization": "token {token}"}})
for path in ("/", "/runs/0/one_v1", "/api/status", "/api/runs", "/queue", "/settings"):
    code = client.get(path).status_code
    seen[path] = [code, loaded()]
code = client.get("/new").status_code
seen["/new"] = [code, loaded()]
print(json.dumps(seen))
"""


def test_the_app_and_its_light_pages_import_nothing_heavy(tmp_path):
    root = make_root(tmp_path)
    write_experiment(root / "output", "one_v1")
    code = PROBE.format(heavy=HEAVY, token=TOKEN)
    cmd = [sys.executable, "-c", code, str(root), str(tmp_path / "state")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen.pop("built") == []
    new_run = seen.pop("/new")
    for path, (status, heavy) in seen.items():
        assert (path, status, heavy) == (path, 200, [])
    # the New-run page needs the config schema: it is loaded now, on its first request
    assert new_run[0] == 200 and "pydantic" in new_run[1]


def test_each_lazy_page_entry_is_its_modules_own_nav_entry():
    for name, page in LAZY_PAGES.items():
        assert name in PAGE_MODULES
        assert page == importlib.import_module(name).PAGE


def test_the_nav_bar_is_whole_before_any_lazy_page_is_loaded(tmp_path):
    app = toolbox_app(tmp_path)
    client = browser_client(app)
    home = client.get("/").text
    for page in LAZY_PAGES.values():
        assert f'<a href="{page.path}">{page.title}</a>' in home
    assert app.router.pages.complete is False  # nothing lazy was needed for that
    dataset = client.get("/dataset")  # the first request of a lazy page loads it
    assert dataset.status_code == 200 and 'aria-current="page">Dataset<' in dataset.text
    assert app.router.pages.complete is True


def test_routes_are_the_same_with_lazy_pages_loaded_late_or_at_once(tmp_path):
    late = toolbox_app(tmp_path / "late")
    eager = toolbox_app(tmp_path / "eager")
    eager.router.warm_up()
    api_client(late).get("/review")  # loads the lazy pages through a request
    assert [_describe(r) for r in late.router.routes] == [_describe(r) for r in eager.router.routes]
    # a path no page serves is still a 404 once everything is loaded
    assert api_client(late).get("/no/such/page").status_code == 404


def test_a_post_to_a_lazy_page_loads_it_first(tmp_path):
    client = api_client(toolbox_app(tmp_path))
    answer = client.post("/dataset/measure", json={"folder": "../outside"})
    assert answer.status_code != 404 and answer.status_code < 500, answer.text


def test_nectargan_toolbox_parses_exactly_as_the_full_parser(capsys):
    """The fast path registers only the toolbox command: same options, same help."""
    fast = build_parser(("nectargan.cli.toolbox_cmd",))
    full = build_parser()
    argv = ["toolbox", "--root", "a", "--root", "b", "--port", "9000", "--open"]
    fast_args, full_args = vars(fast.parse_args(argv)), vars(full.parse_args(argv))
    assert fast_args.pop("func") is full_args.pop("func") and fast_args == full_args
    helps = []
    for parser in (fast, full):
        try:
            parser.parse_args(["toolbox", "--help"])
        except SystemExit:
            helps.append(capsys.readouterr().out)
    assert helps[0] == helps[1] and "--allow-host" in helps[0]


def _describe(route) -> tuple:
    return (type(route).__name__, route.path, tuple(sorted(getattr(route, "methods", ()) or ())))
