"""A first run shows speculation working: `specdec-jupyter demo` (the README's first command)
runs a code edit in draft mode hybrid beside plain decoding, with the speedup and, in one
line, why `auto` drafted or paused; `generate --main M` runs M's default draft, or says why not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specdec_jupyter import cli, load
from specdec_jupyter.display.stats_layout import stats_to_text
from specdec_jupyter.sessions.examples import CODE_EDIT
from specdec_jupyter.sessions.session import Session
from tests.support.call_clock import CallClock

DEMO = ["demo", "--engine", "toy", "--max-tokens", "24", "--raw"]
TOY_EDIT = "the cat sat on the mat and the dog sat on the mat"  # the toy knows no Python


def test_the_demo_runs_a_code_edit_in_hybrid_beside_plain(capsys):
    assert cli.main([*DEMO, "--prompt", TOY_EDIT]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("Your prompt, on toy-trigram")
    assert "copied from the prompt or drafted by toy-bigram" in captured.err
    assert "speedup over plain: " in captured.err and "this run)" in captured.err
    assert "\nauto: drafted on " in captured.err


def test_the_demo_as_json_carries_the_plain_baseline(capsys):
    assert cli.main([*DEMO, "--prompt", TOY_EDIT, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)["stats"]
    assert stats["baseline_tokens_per_second"] > 0 and stats["speedup"] > 0
    assert stats["auto_note"].startswith("drafted on ")


def test_generate_with_a_main_model_runs_its_default_draft(capsys):
    """`--main M` without `--draft` ran with no draft, silently; now M's default draft."""
    argv = ["generate", "--engine", "toy", "--main", "toy-trigram", "--json"]
    assert cli.main([*argv, "--prompt", "the cat", "--max-tokens", "8"]) == 0
    assert json.loads(capsys.readouterr().out)["stats"]["draft_model"] == "toy-bigram"


def test_generate_says_when_a_main_model_has_no_draft(tiny_paths, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path / "config"))
    main = str(tiny_paths[0])
    assert cli.main(["generate", "--main", main, "--prompt", "hi", "--max-tokens", "4"]) == 0
    err = capsys.readouterr().err
    assert f"note: no draft model is remembered for {main}: plain decoding." in err
    assert "--draft-mode lookup, which needs none" in err


def test_compare_measures_plain_decoding_in_the_same_run():
    session = load("toy-trigram", "toy-bigram", progress=False)
    result = session.generate("the cat sat on the mat", raw=True, max_tokens=20, compare=True)
    assert result.stats.baseline_tokens_per_second > 0
    assert "speedup over plain" in stats_to_text(result.stats)
    plain = session.generate("the cat", raw=True, max_tokens=5, compare=True, use_draft=False)
    assert plain.stats.baseline_tokens_per_second is None  # nothing to compare with


def cpu(n: int) -> float:
    """A 1.5B main model's call on n tokens on two CPU cores (models.md)."""
    return 0.062 + 0.028 * (n - 1)


@pytest.fixture
def clocked(tiny_paths, monkeypatch, tmp_path):
    """The tiny pair on a clock that moves by a 2-core CPU's call costs, remembering nothing."""
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(tmp_path / "cache"))
    loaded = load(*tiny_paths, n_ctx=256, n_threads=1, progress=False)
    clock = CallClock()
    clock.install(monkeypatch)
    draft_call = 0.6 * cpu(1)  # a draft model's call reads one token or two: as costly
    yield clock.tap(loaded.main, cpu), clock.tap(loaded.draft, lambda n: draft_call)
    loaded.close()


def test_auto_says_a_draft_model_does_not_pay_here_and_what_would(clocked):
    """On two CPU cores the 0.5B costs about 0.6 of the 1.5B per token: the stats say so in
    one line, and point to copying from the prompt."""
    session = Session(*clocked)
    result = session.generate("hello world", raw=True, max_tokens=40)
    note = result.stats.auto_note
    assert note.startswith("drafted on ") and "\n" not in note
    assert "a draft token costs 0.6 of a main-model call here (a call on 4 tokens 2.4)" in note
    assert "try draft mode hybrid (or lookup) where the reply repeats the prompt" in note


def test_auto_says_copying_from_the_prompt_pays(clocked):
    session = Session(clocked[0], draft_mode="lookup")
    text = "one two three four five six seven eight nine ten " * 3
    result = session.generate(text, raw=True, max_tokens=40)
    note = result.stats.auto_note
    assert "copying from the prompt costs nothing and was right" in note
    assert "so it drafted on" in note


@pytest.mark.real
def test_the_demo_on_the_real_pair_drafts_the_code_edit(qwen_session):
    """The README's first command on this CPU: most of the reply comes from copies."""
    # A seed makes auto choose on nominal costs (a busy CI machine must not change its choices)
    result = qwen_session.generate(
        CODE_EDIT, draft_mode="hybrid", max_tokens=96, compare=True, seed=0
    )
    stats = result.stats
    assert stats.baseline_tokens_per_second > 0
    assert stats.accepted_draft_tokens_count >= 0.4 * stats.predicted_tokens_count
    assert "copying from the prompt costs nothing" in stats.auto_note


def test_the_readme_opens_with_the_two_commands_users_and_ci_run():
    root = Path(__file__).parents[1]
    lines = (root / "README.md").read_text(encoding="utf-8").splitlines()
    ci = (root / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert lines[3] == "bash .ci/setup && .venv/bin/specdec-jupyter demo"
    assert lines[4] == ci == "bash .ci/setup && .venv/bin/python -m pytest"
