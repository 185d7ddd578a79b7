"""The Toolbox's gate: token, cookie, Host, Origin, headers and paths confined to the roots."""

from __future__ import annotations

import os

import pytest
from _toolbox import BASE, PNG_1PX, TOKEN, api_client, browser_client, toolbox_app, write_experiment
from starlette.testclient import TestClient

from nectargan.toolbox.paths import PathRefused, confine, file_in

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def app(tmp_path):
    app = toolbox_app(tmp_path)
    write_experiment(tmp_path / "root" / "output", "demo_v1")
    return app


# -- token -----------------------------------------------------------------------------


def test_no_token_and_wrong_tokens_are_refused(app):
    plain = TestClient(app, base_url=BASE)
    assert plain.get("/").status_code == 401
    assert plain.get("/api/runs").status_code == 401
    assert plain.get("/static/toolbox.css").status_code == 401
    assert plain.get("/?token=" + "0" * 48, follow_redirects=False).status_code == 401
    assert plain.get("/api/runs", headers={"Authorization": "token nope"}).status_code == 401
    assert plain.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401
    forged = {"Cookie": f"nectargan-toolbox-8765={TOKEN}"}  # the token is not the cookie
    assert plain.get("/", headers=forged).status_code == 401


def test_url_token_becomes_an_httponly_strict_cookie_and_leaves_the_url(app):
    client = TestClient(app, base_url=BASE)
    answer = client.get(f"/runs/0/demo_v1?token={TOKEN}&x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/runs/0/demo_v1?x=1"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    page = client.get("/runs/0/demo_v1")  # the cookie alone now lets the browser in
    assert page.status_code == 200 and "demo_v1" in page.text


def test_authorization_header_lets_a_script_in(app):
    runs = api_client(app).get("/api/runs").json()["runs"]
    assert [r["name"] for r in runs] == ["demo_v1"]


# -- Host and Origin ---------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "attacker:8765"])
def test_a_foreign_host_header_is_refused_even_with_the_token(app, host):
    answer = api_client(app).get("/api/runs", headers={"Host": host})
    assert answer.status_code == 403 and "Host" in answer.text


@pytest.mark.parametrize("host", ["localhost:8765", "127.0.0.1:9999", "[::1]:8765"])
def test_loopback_names_on_any_port_pass_for_ssh_tunnels(app, host):
    assert api_client(app).get("/api/runs", headers={"Host": host}).status_code == 200


def test_post_with_the_cookie_needs_our_own_origin(app):
    client = browser_client(app)
    url = "/settings"
    form = {"concurrency": "2"}
    no_origin = client.post(url, data=form, headers={"Origin": ""}, follow_redirects=False)
    del client.headers["Origin"]
    missing = client.post(url, data=form, follow_redirects=False)
    foreign = client.post(url, data=form, headers={"Origin": "http://evil.example"})
    other_port = client.post(url, data=form, headers={"Origin": "http://127.0.0.1:9999"})
    null = client.post(url, data=form, headers={"Origin": "null"})  # a sandboxed frame
    for answer in (no_origin, missing, foreign, other_port, null):
        assert answer.status_code == 403, answer.text
    assert app.state.toolbox.settings.get().concurrency == 1  # nothing changed
    ours = client.post(url, data=form, headers={"Origin": BASE}, follow_redirects=False)
    assert ours.status_code == 303
    assert app.state.toolbox.settings.get().concurrency == 2


def test_header_token_may_omit_origin_but_not_send_a_foreign_one(app):
    client = api_client(app)
    assert client.post("/api/queue/nope/cancel").status_code == 404  # passed the gate
    foreign = client.post("/api/queue/nope/cancel", headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403


def test_event_streams_check_the_origin(app):
    client = browser_client(app)
    foreign = client.get("/runs/events", headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403
    del client.headers["Origin"]
    cross = client.get("/runs/events", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403


def test_security_headers_on_every_answer(app):
    client = browser_client(app)
    for path in ("/", "/settings", "/static/toolbox.js", "/runs/0/nope"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert csp.startswith("default-src 'self'") and "frame-src http://127.0.0.1:8097" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
    refused = TestClient(app, base_url=BASE).get("/")
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_a_run_streaming_to_another_visdom_port_may_frame_it_on_its_own_page(tmp_path):
    import json

    app = toolbox_app(tmp_path)
    output = tmp_path / "root" / "output"
    for name, server in (("own_port", "http://localhost"), ("remote", "http://10.1.2.3")):
        exp = write_experiment(output, name)
        config = json.loads((exp / "config.json").read_text())
        config["visualizer"] = {"visdom": {"enable": True, "port": 8123, "server": server}}
        (exp / "config.json").write_text(json.dumps(config))
    client = browser_client(app)
    policies = client.get("/runs/0/own_port").headers.get_list("content-security-policy")
    assert len(policies) == 1  # the page's own, not added to a second (browsers apply both)
    assert "frame-src http://127.0.0.1:8097 http://127.0.0.1:8123;" in policies[0]
    # a server elsewhere is not embedded, and other pages allow the Settings port only
    assert ":8123" not in client.get("/runs/0/remote").headers["content-security-policy"]
    assert ":8123" not in client.get("/").headers["content-security-policy"]
    via_localhost = client.get("/runs/0/own_port", headers={"Host": "localhost:8765"})
    assert "http://localhost:8123" in via_localhost.headers["content-security-policy"]


# -- paths -------------------------------------------------------------------------------


def test_the_pickers_of_testing_and_utilities_list_only_inside_the_roots(app, tmp_path):
    client = browser_client(app)
    root = tmp_path / "root"
    (root / "models").mkdir()
    (root / "models" / "tiny.onnx").write_bytes(b"x")
    (root / "models" / "notes.txt").write_text("x")
    (root / "models" / "out").symlink_to(tmp_path)  # a link out of the root: not listed
    for url in ("/utilities/folders", "/api/testing/folders"):
        assert [f["path"] for f in client.get(url).json()["folders"]] == [str(root)]
        for bad in ("/etc", str(root / ".." / "state"), str(tmp_path), "models/out"):
            answer = client.get(url, params={"path": bad})
            assert answer.status_code == 403 and "outside" in answer.json()["error"], bad
        listing = client.get(url, params={"path": "models"}).json()
        assert listing["folders"] == [] and listing["parent"] == str(root)
    models = client.get("/utilities/folders", params={"path": "models", "files": "onnx"})
    assert models.json()["files"] == ["tiny.onnx"]
    plain = client.get("/api/testing/folders", params={"path": "models", "files": "onnx"})
    assert plain.json()["files"] == []  # Testing picks folders only


@pytest.mark.parametrize(
    "path",
    [
        "/runs/0/demo_v1/file/../config.json",
        "/runs/0/demo_v1/file/..%2Fconfig.json",
        "/runs/0/demo_v1/file/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/runs/0/demo_v1/file/examples/..%2F..%2F..%2Fsecret.png",
        "/runs/0/demo_v1/file//etc/passwd",
        "/runs/0/demo_v1/file/config.json",  # inside, but not an image
        "/runs/0/..%2F..%2Fsecret/file/x.png",
        "/runs/0/../file/x.png",
        "/runs/7/demo_v1/file/examples/epoch_0001_0.png",
    ],
)
def test_files_are_served_by_run_and_relative_name_only(app, tmp_path, path):
    (tmp_path / "secret.png").write_bytes(PNG_1PX)
    answer = browser_client(app).get(path)
    # 405: the client normalised ``..`` away and the path named an action (POST only)
    assert answer.status_code in (404, 405), (path, answer.status_code)
    assert b"epochs" not in answer.content and b"root:" not in answer.content


def test_an_example_image_is_served(app):
    answer = browser_client(app).get("/runs/0/demo_v1/file/examples/epoch_0002_0.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content == PNG_1PX


def test_a_symlink_out_of_the_root_is_not_followed(app, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG_1PX)
    exp = tmp_path / "root" / "output" / "demo_v1"
    os.symlink(outside, exp / "examples" / "epoch_0009_0.png")
    os.symlink(tmp_path, tmp_path / "root" / "output" / "escape_v1")
    client = browser_client(app)
    assert client.get("/runs/0/demo_v1/file/examples/epoch_0009_0.png").status_code == 404
    assert client.get("/runs/0/escape_v1").status_code == 404


def test_confine_compares_whole_components_and_resolves_links(tmp_path):
    data, data2 = tmp_path / "data", tmp_path / "data2"
    data.mkdir(), data2.mkdir()
    (data / "ok").mkdir()
    os.symlink(data2, data / "link")
    roots = [data.resolve()]
    assert confine("ok", roots) == (data / "ok").resolve()
    assert confine(str(data / "ok"), roots) == (data / "ok").resolve()
    for bad in (str(data2), "../data2", "ok/../../data2", "link", "/etc", "", "a\x00b"):
        with pytest.raises(PathRefused):
            confine(bad, roots)
    with pytest.raises(PathRefused, match="outside the run's folder"):
        file_in(data / "ok", "../../data2/x", roots)


def test_output_roots_outside_the_roots_are_refused(app, tmp_path):
    sibling = tmp_path / "root2"  # shares the root's prefix
    sibling.mkdir()
    client = browser_client(app)
    for bad in (str(sibling), str(tmp_path), "../root2"):
        answer = client.post("/settings", data={"output_roots": bad}, follow_redirects=False)
        assert "error=" in answer.headers["location"]
    roots = app.state.toolbox.output_roots()
    assert roots == [(tmp_path / "root" / "output")]


# -- hostile bodies and volume ------------------------------------------------------------


def test_a_config_with_unknown_keys_or_nan_posted_directly_is_refused(app, tmp_path):
    client = api_client(app)
    unknown = client.post("/api/runs", json={"config": {"train": {"epochz": 3}}})
    assert unknown.status_code == 400 and "train.epochz: unknown key" in unknown.json()["error"]
    body = '{"config": {"train": {"lr_initial": NaN}}}'
    nan = client.post("/api/queue", content=body, headers={"Content-Type": "application/json"})
    assert nan.status_code == 400 and "nan" in nan.json()["error"].lower()
    outside = client.post("/api/runs", json={"config": {"common": {"output_directory": "/tmp"}}})
    assert outside.status_code == 400 and "outside the Toolbox's roots" in outside.json()["error"]
    not_json = client.post(
        "/api/runs", content="{nope", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert client.get("/api/queue").json()["entries"] == []
    assert not list((tmp_path / "root" / "output").glob("*/train.log"))


def test_a_thousand_quick_requests(app):
    client, stranger = api_client(app), TestClient(app, base_url=BASE)
    for _ in range(500):
        assert client.get("/api/runs").status_code == 200
        assert stranger.get("/api/runs").status_code == 401
    assert client.get("/").status_code == 200
