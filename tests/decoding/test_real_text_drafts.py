"""Drafts from another family on the real models: SmolLM2-135M (and Gemma-3-270M) draft text
for Qwen2.5-Coder-1.5B; in exact mode greedy output is plain decoding's, bit for bit, on the
benchmark's kind of prompt and on prompts of our own (emoji, CJK, a continued reply)."""

from __future__ import annotations

import pytest

from specdec_jupyter import load
from tests.support.real_models import catalog_file

pytestmark = pytest.mark.real

PROMPTS = [
    "Explain the Pythagorean theorem",
    "Write a Python function that checks whether a string is a palindrome.",
    "Reply with three emoji about the sea 🌊 and then the word for sea in Chinese (海).",
    [
        {"role": "user", "content": "写一首关于河流的短诗。"},
        {"role": "assistant", "content": "河水"},
    ],
]
GREEDY = {"max_tokens": 24}


@pytest.fixture(scope="module")
def smol_session(qwen_paths):
    session = load(
        qwen_paths[0], catalog_file("smollm2-135m-instruct"), n_ctx=2048, exact=True,
        progress=False,
    )  # fmt: skip
    yield session
    session.close()


@pytest.mark.parametrize("prompt", PROMPTS, ids=["prose", "code", "emoji", "cjk-continued"])
def test_smollm2_drafts_give_plain_decodings_tokens(smol_session, prompt):
    assert smol_session.text_level and smol_session.main.exact
    plain = smol_session.generate(prompt, use_draft=False, **GREEDY).token_ids
    for mode, k in [("model", 3), ("hybrid", "auto")]:
        result = smol_session.generate(prompt, draft_mode=mode, draft_tokens=k, **GREEDY)
        assert result.token_ids == plain, (mode, k)
    assert result.stats.draft_model.startswith(smol_session.draft.name)


def test_smollm2_drafts_are_accepted_on_prose(smol_session):
    """The point of it: text from a model 11x smaller is mostly the main model's own."""
    result = smol_session.generate(PROMPTS[0], draft_tokens=3, max_tokens=40)
    stats = result.stats
    assert stats.total_draft_tokens_count > 0
    assert stats.accepted_draft_tokens_count >= 0.4 * stats.total_draft_tokens_count
    drafted = [e for e in result.events if e.source == "draft"]
    assert len(drafted) == stats.accepted_draft_tokens_count
    for event in drafted:  # the draft's own tokens that covered each: its provenance
        assert event.drafted_as and event.text in "".join(event.drafted_as)


def test_gemma_drafts_give_plain_decodings_tokens(qwen_paths):
    session = load(
        qwen_paths[0], catalog_file("gemma-3-270m"), n_ctx=1024, exact=True, progress=False
    )
    try:
        assert session.text_level
        plain = session.generate(PROMPTS[1], use_draft=False, **GREEDY).token_ids
        assert session.generate(PROMPTS[1], draft_tokens=3, **GREEDY).token_ids == plain
    finally:
        session.close()


def test_smollm2_samples_from_the_shared_tokens_and_a_seed_keeps_plain_samplings_text(
    smol_session,
):
    """At T = 0.8 SmolLM2 draws its drafts from the tokens it spells as Qwen does (q below 1,
    not point masses), some are accepted, and in exact mode the seeded text is plain
    sampling's at that seed."""
    shared = smol_session.shared_tokens
    assert shared.samples and shared.count > 30_000
    seeded = {"temperature": 0.8, "seed": 11, "max_tokens": 32}
    plain = smol_session.generate(PROMPTS[0], use_draft=False, **seeded)
    result = smol_session.generate(PROMPTS[0], draft_tokens=3, **seeded)
    stats = result.stats
    assert stats.total_draft_tokens_count > stats.accepted_draft_tokens_count > 0
    drafted = [e for e in result.events if e.source == "draft"]
    assert any(e.q_draft is not None and e.q_draft < 1 for e in drafted)
    assert all(e.drafted_as == (e.text,) for e in drafted if e.q_draft < 1)
    assert result.token_ids == plain.token_ids
