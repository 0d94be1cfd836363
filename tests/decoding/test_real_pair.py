"""The real Qwen2.5-Coder 1.5B (main) and 0.5B (draft) on llama.cpp."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from specdec_jupyter import load
from specdec_jupyter.decoding.drafters import ModelDrafter
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.models.drafts.verdicts import check_draft
from specdec_jupyter.settings import RunSettings
from tests.support.real_models import SEED_PROMPTS, catalog_file
from tests.support.recording import RecordingEngine, drain, first_difference, top_two_gap

pytestmark = pytest.mark.real


def run(main, drafter, prompt_tokens, **settings):
    generator = speculative_decode(main, drafter, prompt_tokens, RunSettings(**settings))
    return drain(generator)


@pytest.mark.parametrize("prompt", SEED_PROMPTS)
def test_greedy_tokens_are_the_main_models_argmax_in_verification(qwen_session, prompt):
    qwen_session.reset()
    main = RecordingEngine(qwen_session.main)
    tokens = qwen_session.prompt_tokens(prompt)
    events, stats = run(
        main, ModelDrafter(qwen_session.draft), tokens, max_tokens=48, draft_tokens=4
    )
    assert len(events) == 48 and stats.stop_reason == "maxPredictedTokensReached"
    for offset, event in enumerate(events):
        assert event.token_id == int(main.predicted[len(tokens) + offset].argmax())
    assert max(n for n, _ in main.calls[1:]) == 5, "rounds verify last + 4 draft tokens at once"
    assert {e.source for e in events} == {"draft", "main"}
    assert stats.accepted_draft_tokens_count == sum(e.source == "draft" for e in events)
    assert stats.total_draft_tokens_count == (
        stats.accepted_draft_tokens_count
        + stats.rejected_draft_tokens_count
        + stats.ignored_draft_tokens_count
    )


def test_speculative_agrees_with_plain_decoding_up_to_a_near_tie(qwen_session, capsys):
    """llama.cpp's logits depend slightly on the batch size of a decode call, so the two
    paths may part where the main model's top two logits nearly tie; measure where."""
    report = []
    for prompt in SEED_PROMPTS:
        tokens = qwen_session.prompt_tokens(prompt)
        qwen_session.reset()
        plain_main = RecordingEngine(qwen_session.main)
        plain, _ = run(plain_main, None, tokens, max_tokens=64)
        qwen_session.reset()
        spec, _ = run(qwen_session.main, ModelDrafter(qwen_session.draft), tokens, max_tokens=64)
        agree = first_difference([e.token_id for e in plain], [e.token_id for e in spec])
        assert agree >= 1, "the first token comes from the same prefill on both paths"
        if agree < 64:
            gap = top_two_gap(plain_main.predicted[len(tokens) + agree])
            report.append(f"{prompt[:30]!r}: {agree}/64 agree, top-two logit gap {gap:.3f}")
            assert gap < 1.0, "the paths may only part at a near-tie of the main model"
        else:
            report.append(f"{prompt[:30]!r}: 64/64 agree")
    with capsys.disabled():
        print("\nplain vs speculative greedy:\n  " + "\n  ".join(report))


def test_sampling_runs_and_counts_add_up(qwen_session):
    result = qwen_session.generate(
        SEED_PROMPTS[1], max_tokens=40, temperature=0.8, top_p=0.95, seed=3
    )
    stats = result.stats
    assert stats.predicted_tokens_count == len(result.events) <= 40
    assert stats.total_draft_tokens_count == (
        stats.accepted_draft_tokens_count
        + stats.rejected_draft_tokens_count
        + stats.ignored_draft_tokens_count
    )
    drafts = [e for e in result.events if e.source == "draft"]
    assert all(0 < e.acceptance <= 1 and e.q_draft > 0 for e in drafts)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("gemma-3-270m", "another vocabulary (vocabulary types BPE vs SPM)"),
        ("smollm2-135m-instruct", "another vocabulary (vocabulary sizes 151936 vs 49152 "),
    ],
)
def test_a_draft_with_another_vocabulary_drafts_text_and_says_why(qwen_paths, key, expected):
    """Another vocabulary is not refused: the verdict names the first difference, and the
    session drafts text (decoding/text_drafts.py)."""
    verdict = check_draft(qwen_paths[0], catalog_file(key))
    assert verdict.compatible and verdict.text_level
    assert any(expected in warning for warning in verdict.warnings), verdict.warnings
    session = load(qwen_paths[0], draft=catalog_file(key), progress=False)
    assert session.text_level
    session.close()


def cli_generate(*extra: str) -> dict:
    command = [
        sys.executable, "-m", "specdec_jupyter.cli", "generate",
        "--main", "qwen2.5-coder-1.5b", "--prompt", SEED_PROMPTS[0],
        "--max-tokens", "64", "--temperature", "0", "--json", *extra,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout)


def test_cli_json_shows_both_sources_and_plain_agrees(capsys):
    speculative = cli_generate("--draft", "qwen2.5-coder-0.5b", "--draft-tokens", "3")
    stats = speculative["stats"]
    assert {t["source"] for t in speculative["tokens"]} == {"draft", "main"}
    assert stats["accepted_draft_tokens_count"] > 0
    for name in (
        "tokens_per_second", "time_to_first_token", "generation_time", "stop_reason",
        "draft_model", "total_draft_tokens_count", "accepted_draft_tokens_count",
        "rejected_draft_tokens_count", "ignored_draft_tokens_count",
    ):  # fmt: skip
        assert name in stats
    assert speculative["text"] == "".join(t["text"] for t in speculative["tokens"])

    plain = cli_generate("--no-draft")
    assert {t["source"] for t in plain["tokens"]} == {"main"}
    agree = first_difference(
        [t["token_id"] for t in plain["tokens"]], [t["token_id"] for t in speculative["tokens"]]
    )
    with capsys.disabled():
        print(f"\nCLI: --no-draft agrees with the draft run on {agree}/64 tokens")
    assert agree >= 8


def test_logits_rows_are_only_those_asked_for(qwen_session):
    qwen_session.reset()
    tokens = qwen_session.prompt_tokens("hi")
    rows = qwen_session.main.evaluate(tokens, n_logits=2)
    assert rows.shape == (2, 151936) and np.isfinite(rows).all()
