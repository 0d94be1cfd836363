"""The package's own state files, damaged (issue 23 D2, C6): what cannot be read is kept aside,
never written over; a file of the wrong shape never reaches its readers; a failed write leaves
no temporary file. Then a bounded fuzz of every reader with whatever a file may hold."""

from __future__ import annotations

import json
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specdec_jupyter import load
from specdec_jupyter.decoding.cost_memory import CACHE_FILE, CACHE_VERSION, CostStore
from specdec_jupyter.models.drafts.defaults import DefaultDrafts
from specdec_jupyter.models.drafts.verdicts import CACHE_VERSION as VERDICTS_VERSION
from specdec_jupyter.models.drafts.verdicts import VerdictStore, check_draft
from specdec_jupyter.models.json_file import (
    StateFileError,
    StateNote,
    write_json_atomically,
)


@pytest.fixture(autouse=True)
def private_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(tmp_path / "cache"))


def test_a_default_drafts_file_that_cannot_be_read_is_kept_aside(tmp_path):
    """One stray character, and the next set_default_draft rewrote the file with the new
    entry only, silently."""
    path = tmp_path / "default-drafts.json"
    damaged = '{"drafts": {"/m/a.gguf": "/m/a-draft.gguf", "/m/b.gguf": "/m/b-draft.gguf"}}x'
    path.write_text(damaged)
    drafts = DefaultDrafts(path)
    with pytest.warns(StateNote, match="kept as default-drafts.json.unreadable-1"):
        drafts.set("/m/c.gguf", "/m/c-draft.gguf")
    assert (tmp_path / "default-drafts.json.unreadable-1").read_text() == damaged
    assert json.loads(path.read_text()) == {"drafts": {"/m/c.gguf": "/m/c-draft.gguf"}}


def test_a_second_damaged_file_does_not_replace_the_first_kept_aside(tmp_path):
    path = tmp_path / "default-drafts.json"
    for n, text in enumerate(["{", "[1, 2]"], start=1):
        path.write_text(text)
        with pytest.warns(StateNote, match=f"unreadable-{n}"):
            assert DefaultDrafts(path).get("/m/a.gguf") is None
    assert (tmp_path / "default-drafts.json.unreadable-1").read_text() == "{"
    assert (tmp_path / "default-drafts.json.unreadable-2").read_text() == "[1, 2]"


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    """Every write that failed (a full disk) left a `.default-drafts.json-XXXX` behind."""
    with pytest.raises(TypeError):
        write_json_atomically(tmp_path / "state.json", {"unwritable": object()})
    target = tmp_path / "folder.json"
    target.mkdir()
    with pytest.raises(OSError):
        write_json_atomically(target, {"fine": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.json"]


def test_default_drafts_that_cannot_be_saved_are_one_error(tmp_path):
    path = tmp_path / "default-drafts.json"
    path.mkdir()  # a folder where the file should be: it cannot be read or written
    with pytest.warns(StateNote), pytest.raises(StateFileError, match="could not be saved"):
        DefaultDrafts(path).set("/m/a.gguf", "/m/b.gguf")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (CACHE_FILE, {"version": CACHE_VERSION, "engines": []}),
        (
            CACHE_FILE,
            {"version": CACHE_VERSION, "engines": {"k": {"fingerprint": [1, 2], "calls": []}}},
        ),
        (CACHE_FILE, {"version": CACHE_VERSION, "engines": {"k": {"calls": {"x": 1}}}}),
        ("draft-verdicts.json", {"version": VERDICTS_VERSION, "verdicts": []}),
        (
            "draft-verdicts.json",
            {"version": VERDICTS_VERSION, "verdicts": {"k": {"fingerprints": 3}}},
        ),
    ],
)
def test_a_state_file_of_the_wrong_shape_never_stops_a_run(tiny_paths, tmp_path, name, content):
    """C6: `{"version":2,"engines":[]}` in call-costs.json was an AttributeError on every
    real-model run until deleted; `{"verdicts": []}` likewise for the verdicts."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / name).write_text(json.dumps(content))
    with pytest.warns(StateNote, match="kept as"):
        session = load(*tiny_paths, n_ctx=64, n_threads=1, progress=False)
        result = session.generate("hello", raw=True, max_tokens=3, draft_tokens="auto")
    assert result.stats.predicted_tokens_count >= 1
    session.close()
    assert json.loads((cache / f"{name}.unreadable-1").read_text()) == content


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(["drafts", "version", "engines", "verdicts", "fingerprint", "calls"])
SHAPED = st.recursive(
    JSON,
    lambda inner: st.dictionaries(KEYS | st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)
CONTENT = st.one_of(
    st.binary(max_size=64),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.tuples(SHAPED, st.sampled_from([1, CACHE_VERSION])).map(
        lambda vv: json.dumps(
            {"version": vv[1], **vv[0]} if isinstance(vv[0], dict) else vv[0]
        ).encode()
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=CONTENT)
def test_no_content_of_a_state_file_crashes_its_readers(tmp_path_factory, tiny_paths, content):
    """Whatever bytes a state file holds, every reader answers (or notes) and every writer
    writes; nothing raises."""
    folder = tmp_path_factory.mktemp("state")
    for name in ("default-drafts.json", CACHE_FILE, "draft-verdicts.json"):
        (folder / name).write_bytes(content)
    with warnings.catch_warnings():  # notes (StateNote, CacheNote) may come, errors not
        warnings.simplefilter("ignore")
        drafts = DefaultDrafts(folder / "default-drafts.json")
        assert drafts.get("/m/a.gguf") in (None, *_strings(content))
        drafts.set("/m/a.gguf", "/m/b.gguf")
        assert drafts.get("/m/a.gguf") == "/m/b.gguf"
        costs = CostStore(folder / CACHE_FILE)
        assert isinstance(costs.read("k", [1, 2]), dict)
        costs.update("k", [1, 2], lambda entry: {"fingerprint": [1, 2], "calls": {"1": [[0.5, 1]]}})
        assert costs.read("k", [1, 2])["calls"] == {"1": [[0.5, 1]]}
        verdicts = VerdictStore(folder / "draft-verdicts.json")
        assert check_draft(*tiny_paths, store=verdicts).compatible


def _strings(content: bytes) -> list[str]:
    """Any text the content could name a draft with (a reader may return only such)."""
    try:
        return [value for value in _walk(json.loads(content)) if isinstance(value, str)]
    except (ValueError, RecursionError):
        return []


def _walk(value):
    yield value
    if isinstance(value, dict):
        for inner in value.values():
            yield from _walk(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk(inner)
