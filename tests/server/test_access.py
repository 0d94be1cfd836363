"""Who may call the server (issue 23 S1, S2, S4, T2): loopback Host names only, no web page
unless its origin is allowed, JSON sent as JSON, paths never shown to clients, and a port
that cannot be had refused before any banner. A real server on a free loopback port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import httpx
import pytest

from specdec_jupyter import cli
from specdec_jupyter.server.access import Access, host_name, is_loopback
from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.serve import exposure_warnings
from specdec_jupyter.server.serve import serving_in_background as running
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions.manager import EngineManager
from tests.support.tiny_models import write_tiny_gguf

TIMEOUT = 120.0
BODY = {"model": "toy-trigram", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2}


@pytest.fixture(autouse=True)
def private_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def toy_url():
    with running(SpecDecServer(EngineManager(), ServedModels(toy_only=True))) as url:
        yield url


def test_the_probe_s_cross_site_request_is_refused(toy_url):
    """The issue's curl: text/plain, a foreign Host and Origin. It ran the model (200)."""
    reply = httpx.post(
        f"{toy_url}/v1/chat/completions",
        content=httpx.Request("POST", "/", json=BODY).content,
        headers={
            "Content-Type": "text/plain",
            "Host": "evil.example",
            "Origin": "http://evil.example",
        },
    )
    assert reply.status_code == 403
    assert "evil.example" in reply.json()["error"]["message"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:1234", "10.0.0.7"])
def test_a_foreign_host_name_is_refused_on_every_path(toy_url, host):
    """DNS rebinding: a page's name pointed at 127.0.0.1 reads the replies as its own."""
    for path in ("/v1/models", "/health", "/no/such/route"):
        reply = httpx.get(f"{toy_url}{path}", headers={"Host": host})
        assert reply.status_code == 403, path
        assert "--allow-host" in reply.json()["error"]["message"]


@pytest.mark.parametrize("host", ["localhost", "localhost:1234", "127.0.0.1:9", "[::1]:1234"])
def test_loopback_names_are_answered(toy_url, host):
    assert httpx.get(f"{toy_url}/v1/models", headers={"Host": host}).status_code == 200


def test_a_name_the_user_adds_is_answered():
    server = SpecDecServer(
        EngineManager(),
        ServedModels(toy_only=True),
        access=Access.for_bind("127.0.0.1", hosts=["gpu-box.lan"]),
    )
    with running(server) as url:
        assert httpx.get(f"{url}/v1/models", headers={"Host": "gpu-box.lan"}).status_code == 200
        assert httpx.get(f"{url}/v1/models", headers={"Host": "evil.lan"}).status_code == 403


def test_a_web_page_is_refused_unless_its_origin_is_allowed(toy_url):
    page = {"Origin": "http://evil.example"}
    assert httpx.get(f"{toy_url}/v1/models", headers=page).status_code == 403
    reply = httpx.post(f"{toy_url}/v1/chat/completions", json=BODY, headers=page)
    assert reply.status_code == 403
    assert "--allow-origin http://evil.example" in reply.json()["error"]["message"]


def test_an_allowed_origin_gets_cors_headers_and_its_preflight():
    origin = "http://localhost:8888"
    server = SpecDecServer(
        EngineManager(),
        ServedModels(toy_only=True),
        access=Access.for_bind("127.0.0.1", (), [origin]),
    )
    with running(server) as url:
        preflight = httpx.options(
            f"{url}/v1/chat/completions",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, authorization",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == origin
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        reply = httpx.post(
            f"{url}/v1/chat/completions", json=BODY, headers={"Origin": origin}, timeout=TIMEOUT
        )
        assert reply.status_code == 200
        assert reply.headers["access-control-allow-origin"] == origin
        other = httpx.get(f"{url}/v1/models", headers={"Origin": "http://other.example"})
        assert other.status_code == 403


def test_a_server_bound_beyond_loopback_answers_any_name_its_key_protects():
    assert not Access.for_bind("0.0.0.0").check_host
    assert Access.for_bind("0.0.0.0").host_refusal("gpu-box:1234") is None
    assert Access.for_bind("127.0.0.1").host_refusal("gpu-box:1234") is not None
    assert Access.for_bind("127.0.0.1", hosts=["*"]).host_refusal("gpu-box") is None
    assert [host_name(h) for h in ("[::1]:80", "a.b:1", "a.b", "::1")] == [
        "::1",
        "a.b",
        "a.b",
        "::1",
    ]
    assert all(map(is_loopback, ["localhost", "127.0.0.2", "::1", "[::1]", "a.localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.1", "localhost.evil.example"]))


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_json_body_must_say_it_is_json(toy_url, content_type):
    """A form can post text/plain cross-site without a preflight; JSON cannot."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    data = httpx.Request("POST", "/", json=BODY).content
    reply = httpx.post(f"{toy_url}/v1/chat/completions", content=data, headers=headers)
    assert reply.status_code == 415
    assert "application/json" in reply.json()["error"]["message"]
    charset = {"Content-Type": "application/json; charset=utf-8"}
    ok = httpx.post(
        f"{toy_url}/v1/chat/completions", content=data, headers=charset, timeout=TIMEOUT
    )
    assert ok.status_code == 200, ok.text


def test_clients_see_model_ids_and_the_log_keeps_the_path(tmp_path, caplog):
    """S4: a model file damaged on disk is reported by its id, not its absolute path."""
    folder = tmp_path / "models"
    folder.mkdir()
    model = write_tiny_gguf(folder / "tiny.gguf")
    server = SpecDecServer(EngineManager(n_ctx=64, n_threads=1), ServedModels([folder]))
    model.write_text("not a model any more\n")
    with running(server) as url:
        body = {**BODY, "model": "tiny.gguf", "draft_model": None}
        reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=TIMEOUT)
    assert reply.status_code == 503
    message = reply.json()["error"]["message"]
    assert "tiny.gguf" in message and str(tmp_path) not in message
    assert str(tmp_path) in caplog.text, "the server's log keeps the path"


def test_other_paths_are_cut_to_their_last_part(tmp_path):
    server = SpecDecServer(EngineManager(), ServedModels(toy_only=True))
    secret = tmp_path / "private" / "notes.txt"
    secret.parent.mkdir()
    said = server.redact(f"{secret}: cannot be read; see GET /v1/models and {secret.parent}")
    assert said == "notes.txt: cannot be read; see GET /v1/models and private"


def test_a_deeply_nested_body_is_a_400(toy_url):
    """T5: it was a 500 "internal error: RecursionError"."""
    reply = httpx.post(
        f"{toy_url}/v1/chat/completions",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 400
    assert "nests too deeply" in reply.json()["error"]["message"]


def test_unknown_routes_and_methods_are_json_errors(toy_url):
    """T7: they were plain-text 404s; /v1/models/{id} was missing."""
    missing = httpx.get(f"{toy_url}/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    wrong = httpx.get(f"{toy_url}/v1/chat/completions")
    assert wrong.status_code == 405 and "method not allowed" in wrong.json()["error"]["message"]
    one = httpx.get(f"{toy_url}/v1/models/toy-bigram")
    assert one.json() == {
        "id": "toy-bigram", "object": "model", "created": 0, "owned_by": "specdec_jupyter"
    }  # fmt: skip
    assert httpx.get(f"{toy_url}/v1/models/nope").status_code == 404


def test_a_port_out_of_range_is_one_line(capsys):
    """T2: `serve --port 99999` gave two tracebacks."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--port", "99999"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "a port is a number from 0 to 65535" in err and "Traceback" not in err


def test_a_port_in_use_is_refused_before_the_banner(capsys):
    """T2: the "serving" banner was printed before the bind failed."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert len(err.strip().splitlines()) == 1


def test_a_keyless_server_open_to_the_network_warns_in_one_line(tmp_path):
    """S2: `serve --host 0.0.0.0` without --api-key printed only the banner."""
    assert exposure_warnings("127.0.0.1", None, ()) == []
    assert exposure_warnings("0.0.0.0", "key", ()) == []
    assert len(exposure_warnings("0.0.0.0", None, ())) == 1
    assert "--cors" in exposure_warnings("127.0.0.1", None, ["*"])[0]
    env = {**os.environ, "HOME": str(tmp_path), "SPECDEC_MODELS_DIR": str(tmp_path / "m")}
    env.pop("SPECDEC_MODEL_PATH", None)
    command = [sys.executable, "-m", "specdec_jupyter.cli", "serve", "--host", "0.0.0.0"]
    server = subprocess.Popen(
        [*command, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        banner = server.stdout.readline()
        warning = server.stderr.readline()
        assert banner.startswith("specdec-jupyter serving")
        port = re.search(r"http://0\.0\.0\.0:(\d+) ", banner).group(1)
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=TIMEOUT)
        assert models.status_code == 200, "it listens from the banner on"
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C, once it serves
        try:
            _, rest = server.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            raise AssertionError(f"Ctrl-C did not stop it: {server.communicate()[1]}") from None
    assert warning.startswith("warning: 0.0.0.0 is reachable from other machines")
    assert "--api-key" in warning
    assert server.returncode == 0 and "Traceback" not in rest, rest
