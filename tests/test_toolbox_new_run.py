"""The New-run page through Starlette's test client: the form, its server-side checks
(a config posted directly with unknown keys or NaN is refused, the field named), config
files, the folder picker and dataset check confined to the roots, and Start/Queue."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from _toolbox import browser_client, toolbox_app

from nectargan.toolbox.form import default_texts


@pytest.fixture
def root(tmp_path: Path, dataroot: Path) -> Path:
    work = tmp_path / "work"
    (work / "configs").mkdir(parents=True)
    os.symlink(dataroot, work / "synth")  # inside the root by name, outside once resolved
    return work.resolve()


@pytest.fixture
def client(root: Path, tmp_path: Path):
    """The page as a browser reaches it: the token's cookie, our Origin on every post."""
    with browser_client(toolbox_app(tmp_path, roots=[root])) as c:
        yield c


def _form(**changes: str) -> dict[str, str]:
    texts = dict(default_texts())
    texts.update({k.replace("__", "."): v for k, v in changes.items()})
    return texts


def _errors_beside(page: str) -> dict[str, list[str]]:
    """What the page shows beside each field: data-error-for -> messages."""
    found: dict[str, list[str]] = {}
    for key, message in re.findall(r'data-error-for="([^"]+)">([^<]*)<', page):
        found.setdefault(key, []).append(html.unescape(message))
    return found


def test_the_page_lists_every_section_key_and_augmentation(client) -> None:
    page = client.get("/new")
    assert page.status_code == 200
    for key in ("train.epochs", "dataloader.augment.jpeg.p", "visualizer.visdom.port"):
        assert f'name="{key}"' in page.text
    assert 'name="dataloader.augment.rotate.degrees[min]"' in page.text
    assert page.text.count('data-group="dataloader.augment.') == 14
    assert "Epochs at the initial learning rate." in page.text  # the schema's description
    assert "(&gt;= 0, &lt; 1)" in page.text  # train.beta1's bounds
    assert '<option value="BtoA">' in page.text


def test_check_shows_each_bad_value_beside_its_field(client) -> None:
    answer = client.post("/new", data={**_form(train__epochs="-1"), "_action": "check"})
    assert answer.status_code == 422
    assert _errors_beside(answer.text) == {"train.epochs": ["expected >= 0, got -1"]}
    fixed = client.post("/new", data={**_form(train__epochs="3"), "_action": "check"})
    assert fixed.status_code == 200 and "The form is valid." in fixed.text
    assert _errors_beside(fixed.text) == {}


@pytest.mark.parametrize("action", ["start", "queue", "check"])
def test_a_form_posted_directly_with_unknown_keys_or_nan_is_refused_naming_them(
    client, action
) -> None:
    posted = {**_form(train__lr_initial="NaN"), "train.epochz": "3", "_action": action}
    answer = client.post("/new", data=posted)
    assert answer.status_code == 422
    assert _errors_beside(answer.text) == {
        "train.lr_initial": ["expected a finite number, got nan"]
    }
    assert "train.epochz: unknown key (valid here:" in answer.text
    assert client.app.state.toolbox.launcher.launches == {}
    assert client.app.state.toolbox.queue.list() == []


def test_a_partial_form_posted_directly_keeps_the_defaults(client) -> None:
    answer = client.post("/new", data={"train.epochs": "2", "_action": "check"})
    assert answer.status_code == 200 and "The form is valid." in answer.text


def test_load_import_and_save_as_stay_inside_the_root(client, root: Path) -> None:
    (root / "configs" / "up.json").write_text(
        json.dumps({"config": {"train": {"generator": {"features": 16, "use_checkpointing": 1}}}})
    )
    loaded = client.post("/new", data={"_action": "load", "_config_path": "configs/up.json"})
    assert loaded.status_code == 200
    assert 'name="train.generator.features" value="16"' in loaded.text
    assert "upstream key(s) not mapped" in loaded.text
    assert "train.generator.use_checkpointing: no gradient checkpointing here" in loaded.text

    saved = client.post(
        "/new", data={**_form(train__epochs="4"), "_action": "save", "_save_path": "configs/a.json"}
    )
    assert saved.status_code == 200 and f"Saved {root / 'configs' / 'a.json'}" in saved.text
    assert json.loads((root / "configs" / "a.json").read_text())["train"]["epochs"] == 4
    for outside in ("../a.json", "/tmp/a.json", "synth/a.json"):
        refused = client.post("/new", data={**_form(), "_action": "save", "_save_path": outside})
        assert refused.status_code == 422
        assert "outside the Toolbox's roots" in html.unescape(refused.text)
    refused = client.post("/new", data={"_action": "load", "_config_path": "../../etc/passwd"})
    assert refused.status_code == 422
    assert "outside the Toolbox's roots" in html.unescape(refused.text)


def test_the_picker_and_dataset_check_are_confined_to_the_roots(client, root, tmp_path) -> None:
    top = client.get("/new/folders").json()
    assert [f["path"] for f in top["folders"]] == [str(root)]
    inside = client.get("/new/folders", params={"path": str(root), "files": "json"}).json()
    assert [f["name"] for f in inside["folders"]] == ["configs"]  # the symlink out is not shown
    sibling = tmp_path / (root.name + "2")
    sibling.mkdir()
    raw = ("..", "synth", quote(str(sibling)), "%2e%2e", "configs%2F..%2F..", "/", "%2Fetc")
    for path in raw:
        answer = client.get(f"/new/folders?path={path}")  # %-escapes decoded by the server
        assert answer.status_code == 403, path
        assert "outside the Toolbox's roots" in answer.json()["error"]
    assert client.get("/new/dataset", params={"path": "synth"}).status_code == 403
    empty = client.get("/new/dataset", params={"path": "configs"}).json()
    assert not empty["ok"] and "no train/ folder" in empty["problems"][0]


def test_start_is_refused_until_the_dataset_passes(client, root: Path) -> None:
    answer = client.post("/new", data={**_form(dataloader__dataroot="configs"), "_action": "start"})
    assert answer.status_code == 422
    assert "no train/ folder" in _errors_beside(answer.text)["dataloader.dataroot"][0]
    assert client.app.state.toolbox.launcher.launches == {}


def test_add_to_queue_keeps_a_snapshot_of_the_valid_form(client, root: Path) -> None:
    from nectargan.dataset import generate_synthetic_dataset

    generate_synthetic_dataset(root / "sets" / "tiny", n=12, size=32)
    posted = {**_form(dataloader__dataroot="sets/tiny", train__epochs="2"), "_action": "queue"}
    answer = client.post("/new", data=posted, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/queue"
    (entry,) = client.app.state.toolbox.queue.list()
    snapshot = entry.config
    assert snapshot["train"]["epochs"] == 2
    assert snapshot["dataloader"]["dataroot"] == str(root / "sets" / "tiny")
    assert snapshot["common"]["output_directory"] == str(root / "output")


def test_the_api_refuses_a_config_with_unknown_keys_or_nan_naming_the_field(client) -> None:
    for path in ("/api/runs", "/api/queue"):
        answer = client.post(
            path,
            content='{"config": {"train": {"lr_initial": NaN, "epochz": 3}}}',
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 400
        problems = answer.json()["problems"]
        assert "train.lr_initial: expected a finite number, got nan" in problems
        assert any(p.startswith("train.epochz: unknown key") for p in problems)
    assert client.app.state.toolbox.queue.list() == []


def test_a_run_that_ends_at_once_shows_why_beside_the_form(client, root: Path) -> None:
    """Valid to the schema, refused by the run itself (no CUDA here): its own words shown."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the run would start")
    posted = {**_form(common__device="cuda", train__epochs="1"), "_action": "start"}
    answer = client.post("/new", data=posted, follow_redirects=False)
    assert answer.status_code == 422
    page = html.unescape(answer.text)
    assert "the run ended at once (exit 2):" in page
    assert "common.device: 'cuda' needs CUDA, which this machine does not have" in page
    assert 'name="common.device" value="cuda"' in page  # the form is kept, to fix
