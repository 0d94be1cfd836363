"""A bounded fuzz of what a client can send (issue 23): the request parser answers every JSON
value with a request or a 400 naming the problem, and a real server on the toy pair answers
every body, whatever its bytes, with no 500 and stays up."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specdec_jupyter.server.app import SpecDecServer, status_of
from specdec_jupyter.server.requests import NEUTRAL, USED, CompletionRequest, parse_request
from specdec_jupyter.server.served import ServedModels
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.settings import RunSettings
from tests.support.servers import private_server

TIMEOUT = 120.0
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["auto", "model", "lookup", "toy-trigram", "toy-bigram", "\udcff", ""])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = [*USED, *NEUTRAL, *RunSettings.names(), "messages", "prompt", "stream", "unknown"]
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "developer", "tool", 3]),
     "content": st.one_of(st.text(max_size=20), JSON)},
)  # fmt: skip
BODY = st.one_of(
    JSON,
    st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=8),
    st.fixed_dictionaries(
        {
            "model": st.sampled_from(["toy-trigram", "toy-bigram", "nope"]),
            "messages": st.lists(MESSAGE, min_size=1, max_size=3),
        },
        optional={name: JSON for name in FIELDS if name not in ("messages", "model")},
    ),
)


@settings(max_examples=400, deadline=None)
@given(body=BODY, chat=st.booleans())
def test_the_parser_answers_every_body_with_a_request_or_a_400(body, chat):
    try:
        request = parse_request(body, chat=chat)
    except Exception as exc:
        assert status_of(exc) == 400, f"{type(exc).__name__}: {exc}"
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(request, CompletionRequest)
        assert isinstance(request.stream, bool) and isinstance(request.settings, RunSettings)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    def server() -> SpecDecServer:
        return SpecDecServer(EngineManager(), ServedModels(toy_only=True))

    with private_server(tmp_path_factory.mktemp("fuzz"), server) as served:
        yield served


def _short(body: object) -> object:
    """Runs kept short: a valid max_tokens is at most 8 (the toy pair is quick, not free)."""
    if isinstance(body, dict):
        for name in ("max_tokens", "max_completion_tokens"):
            if type(body.get(name)) is int and 8 < body[name] <= 8192:
                body = {**body, name: 8}
        if "max_tokens" not in body and "max_completion_tokens" not in body:
            body = {**body, "max_tokens": 8}
    return body


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(BODY.map(_short).map(lambda b: json.dumps(b).encode()), st.binary(max_size=64)),
    path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/api/v0/chat/completions"]),
)
def test_a_real_server_answers_every_body_without_a_500(url, body, path):
    reply = httpx.post(
        f"{url}{path}", content=body, headers={"Content-Type": "application/json"}, timeout=TIMEOUT
    )
    assert reply.status_code < 500 or reply.status_code == 503, reply.text
    if reply.headers["content-type"].startswith("text/event-stream"):
        assert reply.text.rstrip().endswith("data: [DONE]")
        return
    payload = reply.json()
    assert ("error" in payload) == (reply.status_code != 200), payload
    assert httpx.get(f"{url}/health").status_code == 200
