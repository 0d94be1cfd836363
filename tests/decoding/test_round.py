"""One round and the prefill, on their own: what they leave in the cache, what they cost."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from specdec_jupyter.decoding import round as one_round
from specdec_jupyter.decoding.drafters import ModelDrafter, rewind
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.decoding.round import prefill, run_round
from specdec_jupyter.decoding.sampling import SamplingSettings, distribution
from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.errors import ContextOverflowError
from specdec_jupyter.settings import RunSettings
from tests.support.fit import fit_pvalue
from tests.support.recording import drain
from tests.support.scripted_engine import GOOSE, GOOSE_HEAD, GOOSE_TAIL, ScriptedEngine

GREEDY = SamplingSettings()
ANSWER = 65  # "A": where the draft's script leaves the main model's


def test_a_round_keeps_in_the_cache_only_what_stands():
    """The draft agrees with the main model for one token, then not: one accepted, the
    correction emitted, and the cache holds the context up to the accepted token."""
    main = ScriptedEngine()
    draft = ScriptedEngine({GOOSE_HEAD: GOOSE_TAIL, GOOSE_TAIL: ANSWER})
    context = [*main.tokenize(GOOSE), GOOSE_HEAD]
    main.evaluate(context[:-1], n_logits=1)
    option = ModelDrafter(draft).options(context, 3)[0]
    outcome = run_round(main, context[-1:], option, 3, GREEDY, np.random.default_rng(0))
    assert outcome.draft.tokens[:2] == [GOOSE_TAIL, ANSWER]
    assert outcome.n_accepted == 1 and outcome.verification.rejected
    assert outcome.tokens == [GOOSE_TAIL, GOOSE_HEAD]
    assert [t.source for t in outcome.emitted] == ["draft", "main"]
    assert main.tokens == [*context, GOOSE_TAIL], "the corrected token is not cached yet"
    assert outcome.draft_seconds >= 0 and outcome.verify_seconds >= 0


def test_without_an_option_a_round_is_a_plain_step():
    main, _ = toy_pair()
    context = main.tokenize("when the draft model")
    outcome = run_round(main, context, None, 4, GREEDY, np.random.default_rng(0))
    assert len(outcome.draft) == 0 and outcome.n_accepted == 0
    assert [t.source for t in outcome.emitted] == ["main"]
    assert outcome.tokens == [int(outcome.rows[0].argmax())]
    assert main.tokens == context


def test_greedy_rounds_take_no_whole_softmax(monkeypatch):
    """Under greedy the main model's p is read for the emitted tokens only, from their rows."""

    def whole_softmax(*_):
        raise AssertionError("a whole softmax in the generator's greedy path")

    main, draft = toy_pair()
    context = main.tokenize("when the draft model")
    first = prefill(main, ModelDrafter(draft), context, GREEDY, np.random.default_rng(0))
    monkeypatch.setattr(one_round, "distribution", whole_softmax)
    context.append(first.token_id)
    option = ModelDrafter(draft).options(context, 4)[0]
    outcome = run_round(main, context[-1:], option, 4, GREEDY, np.random.default_rng(0))
    assert outcome.main_probs is None
    assert all(0 < t.p_main <= 1 for t in outcome.emitted)


def test_a_prompt_longer_than_the_context_is_named_as_such():
    main = ScriptedEngine(n_ctx=4)
    with pytest.raises(ContextOverflowError, match="the prompt is 6 tokens .* holds 4; shorten"):
        prefill(main, None, main.tokenize(GOOSE * 3), GREEDY, np.random.default_rng(0))


def test_a_prompt_that_fills_the_context_still_gets_its_first_token():
    """The first token comes from the prompt's pass and needs no cache slot of its own."""
    main = ScriptedEngine(n_ctx=4)
    prompt = main.tokenize(GOOSE * 2)
    events, stats = drain(speculative_decode(main, None, prompt, RunSettings()))
    assert [e.token_id for e in events] == [GOOSE_HEAD]
    assert stats.stop_reason == "contextLengthReached"


@pytest.mark.parametrize("filters", [{}, {"min_p": 0.1}])
def test_rejection_sampling_draws_the_main_models_filtered_distribution(filters):
    """Notebook 02's experiment: the first token of many rounds, drafted by the toy bigram and
    judged by rejection sampling (u against min(1, p/q), the residual after a rejection),
    follows the main model's p, filtered as both models' distributions are (chi-square)."""
    main, draft = toy_pair()
    context = main.tokenize("the draft model")
    sampling = SamplingSettings.of(RunSettings(temperature=1.0, **filters))
    p = distribution(main.evaluate(context, n_logits=1)[0], sampling)
    rng = np.random.default_rng(0)
    first: Counter[int] = Counter()
    rejected = 0
    for _ in range(6000):
        option = ModelDrafter(draft).options(context, 2)[0]
        outcome = run_round(main, rewind(main, context), option, 2, sampling, rng)
        first[outcome.tokens[0]] += 1
        rejected += outcome.verification.rejected
    assert 0 < rejected < 6000, "both the accept and the reject path must run"
    assert all(p[token] > 0 for token in first), "a token the filters cut was drawn"
    assert fit_pvalue(first, p) > 1e-3
