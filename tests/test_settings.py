"""One validation of a run's settings, before any model loads, in every entry point."""

from __future__ import annotations

import json
import math

import pytest

from specdec_jupyter import cli, load
from specdec_jupyter import settings as settings_module
from specdec_jupyter.errors import SettingsError
from specdec_jupyter.sessions import session as session_module
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.sessions.pair import Pair
from specdec_jupyter.settings import LoadOptions, RunSettings, default_parallel
from tests.support.magic_shell import magic

BAD = [
    ({"temperature": math.nan}, "temperature must be >= 0 and finite"),
    ({"temperature": math.inf}, "temperature must be >= 0 and finite"),
    ({"temperature": -1}, "temperature must be >= 0"),
    ({"top_p": 0}, r"top_p must be in \(0, 1\]"),
    ({"top_p": math.nan}, r"top_p must be in \(0, 1\]"),
    ({"top_k": 2.5}, "top_k must be an integer >= 0"),
    ({"max_tokens": 0}, "max_tokens must be an integer >= 1"),
    ({"max_tokens": 2.5}, "max_tokens must be an integer >= 1"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"stop": [""]}, "each stop must be a non-empty string"),
    ({"stop": ["ok", 5]}, "each stop must be a non-empty string"),
    ({"draft_tokens": -1}, '"auto" or an integer >= 0'),
    ({"draft_mode": "both"}, "draft_mode must be one of model, lookup, hybrid"),
    # issue 23 W2: a seed past 64 bits would wrap onto a smaller one's text
    ({"seed": 2**64}, "seed must be an integer >= 0 and < 2..64"),
    # issue 23 W4: a mapping is not a list of stop strings (its keys were taken)
    ({"stop": {"a": 1}}, "stop must be a string or a list of strings"),
    ({"max_tokens": 10**100}, "max_tokens .* got a number of 101 digits"),
]


@pytest.mark.parametrize(("raw", "message"), BAD)
def test_each_bad_setting_is_named_with_its_range(raw, message):
    with pytest.raises(SettingsError, match=message) as caught:
        RunSettings(**raw)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"n_ctx": 2**32 + 512}, "n_ctx must be a positive number of tokens .at most 2147483647."),
        ({"n_ctx": 10**100}, "n_ctx .* got a number of 101 digits"),
        ({"n_threads": 2**31}, "n_threads must be at least 1 and at most 512"),
        ({"gpu_layers": 2**40}, "gpu_layers must be .* up to 2147483647"),
    ],
)
def test_load_options_past_what_the_backend_holds_are_refused_not_wrapped(raw, message):
    """Issue 23 W3: n_ctx=2**32+512 loaded 512 tokens, n_threads=2**31 ran -2147483648."""
    with pytest.raises(SettingsError, match=message):
        LoadOptions(**raw)


def test_the_largest_seed_is_its_own_text():
    session = load("toy-trigram", progress=False)
    top = session.generate("the cat", raw=True, max_tokens=12, temperature=1.0, seed=2**64 - 1)
    zero = session.generate("the cat", raw=True, max_tokens=12, temperature=1.0, seed=0)
    assert top.text != zero.text


def test_a_string_stop_is_one_stop():
    assert RunSettings(stop=", 5").stop == (", 5",)


def test_a_string_stop_stops_at_the_whole_string_only():
    session = load("toy-trigram", "toy-bigram", progress=False)
    plain = session.generate("the cat sat on the", raw=True, max_tokens=40).text
    stopped = session.generate("the cat sat on the", raw=True, max_tokens=40, stop=" zq")
    assert stopped.text == plain, "no single character of the stop string ends the text"


@pytest.mark.parametrize(("raw", "message"), BAD[:4])
def test_the_session_refuses_before_tokenizing(raw, message):
    session = load("toy-trigram", progress=False)
    with pytest.raises(SettingsError, match=message):
        session.generate("the cat", **raw)


def test_the_manager_refuses_before_any_model_loads():
    manager = EngineManager()
    with pytest.raises(SettingsError, match="max_tokens"):
        manager.start("the cat", Pair("toy-trigram", None), max_tokens=0)
    assert manager.loaded() == {}, "nothing was opened for a run that cannot start"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-tokens", "0"], "max_tokens must be an integer >= 1 (at most 2147483647), got 0"),
        (["--temperature", "nan"], "temperature must be >= 0 and finite (0 is greedy), got nan"),
        (["--temperature", "-1"], "temperature must be >= 0"),
        (["--top-p", "0"], "top_p must be in (0, 1]"),
        (["--seed", "-1"], "seed must be an integer >= 0"),
        (["--stop", ""], "each stop must be a non-empty string"),
        (["--no-draft", "--draft-mode", "hybrid"], "--no-draft runs plain decoding"),
        (["--no-draft", "--draft", "toy-bigram"], "--no-draft runs plain decoding"),
    ],
)
def test_the_cli_refuses_in_one_line_before_loading(argv, message, capsys, monkeypatch):
    monkeypatch.setattr("specdec_jupyter.sessions.session.load", _no_loading)
    code = cli.main(["generate", "--engine", "toy", "--prompt", "hi", "--json", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err == f"error: {err[7:]}" and message in err
    assert len(err.strip().splitlines()) == 1


def _no_loading(*args, **kwargs):
    raise AssertionError("a model was loaded for settings that are refused")


def test_the_cli_json_is_json_at_any_valid_temperature(capsys):
    code = cli.main(
        ["generate", "--engine", "toy", "--prompt", "the cat", "--raw", "--json",
         "--temperature", "0.8", "--seed", "3", "--max-tokens", "8"]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stats"]["predicted_tokens_count"] == len(out["tokens"]) >= 1


def test_unreadable_and_misplaced_files_are_one_line(tmp_path, capsys, monkeypatch):
    models = tmp_path / "models"
    models.write_text("a file where the models folder should be")
    monkeypatch.setenv("SPECDEC_MODELS_DIR", str(models))
    code = cli.main(["models", "fetch", "--quiet", "smollm2-135m-instruct"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_the_cell_magic_refuses_settings_in_one_line(ip):
    magic(ip, "load toy-trigram --engine toy")
    _, captured = magic(ip, "--max-tokens 0", "the cat")
    assert (
        captured.stderr
        == "specdec: max_tokens must be an integer >= 1 (at most 2147483647), got 0\n"
    )
    _, captured = magic(ip, "--temperature nan", "the cat")
    assert captured.stderr.startswith("specdec: temperature must be >= 0 and finite")


def test_the_loop_gets_the_settings_object_its_door_made(monkeypatch):
    """Made (and checked) once at the door, the settings pass through the manager and the
    session to the loop as the same object, checked nowhere again."""
    settings = RunSettings(max_tokens=4, temperature=0.5, seed=1)
    seen = []
    run = session_module.Run

    def spying(main, drafter, prompt, handed, *args, **kwargs):
        seen.append(handed)
        return run(main, drafter, prompt, handed, *args, **kwargs)

    monkeypatch.setattr(session_module, "Run", spying)
    EngineManager().generate("the cat", Pair("toy-trigram", None), settings)
    assert len(seen) == 1 and seen[0] is settings


@pytest.mark.parametrize(
    ("cores", "gigabytes", "parallel"),
    [(2, 16, 4), (1, 16, 2), (16, 64, 8), (8, 6, 3), (4, 1, 1)],
)
def test_parallel_sequences_default_from_the_cores_and_the_memory(
    monkeypatch, cores, gigabytes, parallel
):
    """Twice the cores, at most 8, a sequence per 2 GB; a value given is kept."""
    monkeypatch.setattr(settings_module.os, "cpu_count", lambda: cores)
    pages = {"SC_PHYS_PAGES": gigabytes << 18, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(settings_module.os, "sysconf", pages.__getitem__)
    assert default_parallel() == parallel
    assert LoadOptions().serving().parallel == parallel
    assert LoadOptions(parallel=3).serving().parallel == 3


@pytest.mark.parametrize("value", [0, 65, 2.5, "four"])
def test_a_bad_parallel_is_named_with_its_range(value):
    with pytest.raises(SettingsError, match="parallel must be an integer from 1 to 64"):
        LoadOptions(parallel=value)
