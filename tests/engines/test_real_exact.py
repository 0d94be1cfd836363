"""Exact mode on the real Qwen2.5-Coder pair: plain decoding's tokens bit for bit, in every
draft mode and k, streamed or not, after Continue and after a prompt-cache reuse; a seed gives
one text whatever `auto` drafts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specdec_jupyter import load

pytestmark = pytest.mark.real

HAIKU = "Write a haiku about rivers"
PROMPTS = [HAIKU, "Write a Python function that returns the n-th Fibonacci number."]
GREEDY = {"max_tokens": 32}


@pytest.fixture(scope="module")
def exact_session(qwen_paths):
    session = load(*qwen_paths, n_ctx=2048, exact=True, progress=False)
    yield session
    session.close()


def test_fast_mode_logits_change_with_the_call_size(qwen_session):
    """Why exact mode exists: repacked weights read four tokens at a time with another kernel."""
    main = qwen_session.main
    tokens = main.tokenize("def quicksort(items):\n    if len(items) <= 1:\n        return items")
    main.rollback(0)
    main.read_prompt(tokens[:10])
    alone = np.concatenate([main.evaluate([token], 1) for token in tokens[10:16]])
    main.rollback(10)
    together = main.evaluate(tokens[10:16], 6)
    assert np.abs(alone - together).max() > 1e-3
    assert "fast (logits vary with a call's size)" in main.backend


def test_the_seeded_haiku_is_one_text_and_plain_samplings(exact_session):
    seeded = {"temperature": 0.9, "seed": 7, "max_tokens": 24}
    plain = exact_session.generate(HAIKU, use_draft=False, **seeded).text
    texts = {exact_session.generate(HAIKU, **seeded).text for _ in range(5)}
    assert texts == {plain}
    assert exact_session.last_stats.backend.endswith("; exact")


@pytest.mark.parametrize("prompt", PROMPTS)
def test_every_mode_and_k_gives_plain_decodings_tokens(exact_session, prompt):
    plain = exact_session.generate(prompt, use_draft=False, **GREEDY).token_ids
    runs = [("model", k) for k in range(1, 9)]
    runs += [("lookup", "auto"), ("hybrid", 4), ("hybrid", "auto"), ("model", "auto")]
    for mode, k in runs:
        result = exact_session.generate(prompt, draft_mode=mode, draft_tokens=k, **GREEDY)
        assert result.token_ids == plain, (mode, k)
    streamed = [event.token_id for event in exact_session.stream(prompt, **GREEDY)]
    assert streamed == plain


def test_continue_and_a_reused_prompt_give_plain_decodings_tokens(exact_session):
    conversation = [
        {"role": "user", "content": PROMPTS[1]},
        {"role": "assistant", "content": "def fibonacci(n):\n"},
    ]
    exact_session.reset()
    plain = exact_session.generate(conversation, use_draft=False, **GREEDY).token_ids
    exact_session.generate(PROMPTS[1], draft_tokens=3, **GREEDY)  # the cache now holds this
    assert exact_session.generate(conversation, draft_tokens=3, **GREEDY).token_ids == plain
    longer = [*conversation[:1], {"role": "assistant", "content": "def fibonacci(n):\n    "}]
    exact_session.reset()
    fresh = exact_session.generate(longer, use_draft=False, **GREEDY).token_ids
    exact_session.generate(conversation, draft_mode="hybrid", **GREEDY)
    assert exact_session.generate(longer, draft_mode="hybrid", **GREEDY).token_ids == fresh


MANY_PROMPTS = [
    "Explain recursion to a child.",
    "Write a SQL query that counts orders per customer.",
    "def add(a, b):\n    return a + b\n\nAdd a docstring and type hints to this function.",
    "Translate 'good morning, how are you?' into French and German.",
    "List five prime numbers and say why each is prime.",
    "Rename the variable x to total in: x = 0\nfor i in range(10):\n    x += i\nprint(x)",
]


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    prompt=st.sampled_from(MANY_PROMPTS),
    mode=st.sampled_from(["model", "lookup", "hybrid"]),
    k=st.sampled_from([1, 2, 3, 5, 8, "auto"]),
    temperature=st.sampled_from([0.0, 0.8]),
    seed=st.integers(0, 1000),
)
def test_any_prompt_and_setting_gives_plain_decodings_tokens(
    exact_session, prompt, mode, k, temperature, seed
):
    options = {"max_tokens": 20, "temperature": temperature, "seed": seed}
    plain = exact_session.generate(prompt, use_draft=False, **options).token_ids
    spec = exact_session.generate(prompt, draft_mode=mode, draft_tokens=k, **options)
    assert spec.token_ids == plain
