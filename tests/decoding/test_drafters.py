"""Prompt lookup's n-gram matching, and every drafter through the loop on the tiny pair:
greedy output is the main model's argmax in its verification pass, whatever drafts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from specdec_jupyter.decoding.drafter_choice import make_drafter
from specdec_jupyter.decoding.drafters import (
    HybridDrafter,
    ModelDrafter,
    PromptLookupDrafter,
    drive,
)
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.decoding.sampling import SamplingSettings, distribution
from specdec_jupyter.decoding.verify import verify_sampling
from specdec_jupyter.errors import SpecDecError
from specdec_jupyter.sessions.session import Session
from specdec_jupyter.settings import RunSettings
from tests.support.fit import fit_pvalue
from tests.support.recording import RecordingEngine, drain

REPETITIVE = "hello world the draft model hello world the main model hello world the"


def test_lookup_proposes_what_followed_the_latest_match():
    lookup = PromptLookupDrafter(max_ngram=3, min_ngram=1)
    #              0  1  2  3  4  5  6  7  8  9
    context = [5, 6, 7, 8, 5, 6, 9, 1, 5, 6]
    assert lookup.lookup(context, 2) == [9, 1], "latest '5 6' is at 4, not at 0"


def test_lookup_prefers_the_longest_ngram():
    lookup = PromptLookupDrafter(max_ngram=3, min_ngram=1)
    context = [2, 3, 8, 1, 2, 3, 4, 9, 1, 2, 3]
    assert lookup.lookup(context, 1) == [4], "'1 2 3' beats the earlier '2 3'"


def test_lookup_without_a_match_proposes_nothing():
    lookup = PromptLookupDrafter(max_ngram=3, min_ngram=2)
    assert lookup.lookup([1, 2, 3, 4, 5, 1], 4) == [], "a 1-gram match is below min_ngram"
    assert lookup.lookup([7], 4) == []
    assert lookup.options([1, 2, 3, 4], 4) == []


def test_lookup_never_matches_the_context_end_itself():
    lookup = PromptLookupDrafter(max_ngram=2, min_ngram=2)
    assert lookup.lookup([1, 2, 3, 1, 2], 3) == [3, 1, 2]
    assert lookup.lookup([4, 5, 6, 7], 3) == []


def test_a_continuation_that_overlaps_the_end_keeps_repeating():
    lookup = PromptLookupDrafter(max_ngram=2, min_ngram=2)
    # '1 2' last occurred at 2; what follows runs into the end and on into the draft itself
    assert lookup.lookup([1, 2, 1, 2], 5) == [1, 2, 1, 2, 1]
    assert lookup.lookup([3, 3, 3], 4) == [3, 3, 3, 3]


def test_the_index_follows_a_growing_and_a_changed_context():
    lookup = PromptLookupDrafter(max_ngram=2, min_ngram=2)
    context = [1, 2, 3, 4]
    assert lookup.lookup(context, 1) == []
    context += [1, 2]
    assert lookup.lookup(context, 2) == [3, 4]
    context += [8, 3, 4]
    assert lookup.lookup(context, 2) == [1, 2]
    assert lookup.lookup([9, 9, 1, 2], 1) == [], "a new prompt: the old n-grams are gone"
    lookup_options = lookup.options([1, 2, 5, 1, 2], 3)
    assert [o.preview for o in lookup_options] == [[5, 1, 2]]
    assert drive(lookup_options[0].propose(2, SamplingSettings(), None)).tokens == [5, 1]


def run(main, drafter, prompt_tokens, **settings):
    generator = speculative_decode(main, drafter, prompt_tokens, RunSettings(**settings))
    return drain(generator)


def drafters(session):
    return {
        "model": ModelDrafter(session.draft),
        "lookup": PromptLookupDrafter(),
        "hybrid": HybridDrafter(PromptLookupDrafter(), ModelDrafter(session.draft)),
    }


@pytest.mark.parametrize("mode", ["model", "lookup", "hybrid"])
@pytest.mark.parametrize("draft_tokens", [3, "auto"])
def test_greedy_emits_the_main_argmax_with_every_drafter(tiny_session, mode, draft_tokens):
    tiny_session.reset()
    main = RecordingEngine(tiny_session.main)
    tokens = tiny_session.main.tokenize(REPETITIVE)
    drafter = drafters(tiny_session)[mode]
    events, stats = run(main, drafter, tokens, max_tokens=80, draft_tokens=draft_tokens)
    for offset, event in enumerate(events):
        assert event.token_id == int(main.predicted[len(tokens) + offset].argmax())
    assert stats.draft_model == drafter.name
    assert len(stats.draft_lengths) == stats.rounds
    assert stats.total_draft_tokens_count == sum(stats.draft_lengths)
    if draft_tokens == 3:
        assert stats.accepted_draft_tokens_count > 0, "the repetitive prompt gets drafts right"


def test_lookup_under_sampling_keeps_the_main_models_distribution(tiny_session):
    """A lookup draft is a point mass: accepted with p(x), else the token comes from p without
    x. Given token 1, token 2 (drafted by lookup) must be distributed as p (chi-square)."""
    settings = SamplingSettings(temperature=1.0)
    main = tiny_session.main

    def p_after(tokens: list[int]) -> np.ndarray:
        main.rollback(0)
        return distribution(main.evaluate(tokens, n_logits=1)[0], settings)

    # Put the likely first token and its likely follower up front, so lookup drafts the
    # follower after the first token: accepted often, rejected often.
    base = main.tokenize("python function")
    first = int(p_after(base).argmax())
    tokens = [first, int(p_after([*base, first]).argmax()), *base]
    pairs = []
    accepted = rejected = 0
    for seed in range(3000):
        events, stats = run(
            main, PromptLookupDrafter(min_ngram=1), tokens, max_tokens=3, draft_tokens=1,
            seed=seed, temperature=settings.temperature,
        )  # fmt: skip
        pairs.append((events[0].token_id, events[1].token_id))
        accepted += events[1].source == "draft"
        rejected += stats.rejected_draft_tokens_count
    assert accepted > 100 and rejected > 100, "both the accept and the reject path must run"
    top, _ = Counter(a for a, _ in pairs).most_common(1)[0]
    observed = Counter(b for a, b in pairs if a == top)
    p = p_after([*tokens, top])
    assert fit_pvalue(observed, p) > 1e-3


def test_draft_modes_are_chosen_by_name(tiny_session):
    assert isinstance(make_drafter("lookup", None), PromptLookupDrafter)
    assert isinstance(make_drafter("hybrid", tiny_session.draft), HybridDrafter)
    assert make_drafter(None, tiny_session.draft) is None
    with pytest.raises(SpecDecError, match="needs a draft model"):
        make_drafter("model", None)
    with pytest.raises(SpecDecError, match="draft_mode must be one of model, lookup, hybrid"):
        Session(tiny_session.main, draft_mode="ngram")


def test_session_drafts_by_lookup_without_a_draft_model(tiny_paths):
    from specdec_jupyter import load

    session = load(tiny_paths[0], draft="prompt-lookup", n_ctx=256, n_threads=1, progress=False)
    try:
        assert session.draft is None and session.draft_mode == "lookup"
        result = session.generate(REPETITIVE, raw=True, max_tokens=40, draft_tokens=3)
        assert result.stats.draft_model == "prompt-lookup"
        assert result.stats.total_draft_tokens_count > 0
        with pytest.raises(SpecDecError, match="needs a draft model"):
            session.generate(REPETITIVE, raw=True, max_tokens=5, draft_mode="hybrid")
    finally:
        session.close()


def test_a_point_mass_draft_is_accepted_with_p_and_corrected_without_it():
    p = np.array([0.5, 0.3, 0.2])
    rng = np.random.default_rng(0)
    verdicts = [verify_sampling([0], None, [p, p], rng) for _ in range(4000)]
    assert np.mean([v.n_accepted for v in verdicts]) == pytest.approx(0.5, abs=0.03)
    corrections = Counter(v.next_token for v in verdicts if v.n_accepted == 0)
    assert corrections[0] == 0, "the rejected token is never the correction"
    assert corrections[1] / corrections[2] == pytest.approx(0.3 / 0.2, rel=0.15)
    assert verify_sampling([1], None, [np.eye(3)[1], p], rng).n_accepted == 1


@pytest.mark.parametrize(
    ("extra", "draft_model"),
    [
        (["--draft-mode", "lookup", "--draft-tokens", "3"], "prompt-lookup"),
        (["--draft-mode", "hybrid", "--draft-tokens", "auto"], "tiny-draft + prompt-lookup"),
    ],
)
def test_the_cli_picks_the_draft_mode(tiny_paths, extra, draft_model):
    main, draft = tiny_paths
    command = [
        sys.executable, "-m", "specdec_jupyter.cli", "generate", "--main", str(main),
        "--draft", str(draft), "--prompt", REPETITIVE, "--raw", "--max-tokens", "20",
        "--n-ctx", "256", "--json", *extra,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    stats = json.loads(done.stdout)["stats"]
    assert stats["draft_model"] == draft_model
    assert stats["predicted_tokens_count"] == 20
