"""Drafting across vocabularies on tiny models: a draft of another vocabulary ("other": other
ids, other merges, other size) drafts text for the tiny main model; greedy output stays plain
decoding's in exact mode, and characters split across tokens on either side are handled."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from specdec_jupyter.decoding.drafter_choice import make_drafter
from specdec_jupyter.decoding.drafters import HybridDrafter, drive
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.decoding.sampling import SamplingSettings, distribution
from specdec_jupyter.decoding.text_drafts import TextDrafter, complete_length
from specdec_jupyter.display.stats_layout import stats_rows
from specdec_jupyter.engines.base import text_tokens
from specdec_jupyter.engines.registry import engine_kind
from specdec_jupyter.engines.resolve import resolve
from specdec_jupyter.sessions.session import Session
from specdec_jupyter.settings import LoadOptions, RunSettings
from tests.support.fit import fit_pvalue
from tests.support.recording import drain
from tests.support.tiny_models import write_tiny_gguf

WAVE, HAN = "🌊", "中文"  # 4 bytes; two characters of 3 bytes


@pytest.mark.parametrize(
    ("text", "cut"),
    [("", 0), ("abc", 3), ("é", 2), (WAVE, 4), (HAN, 6), ("a" + WAVE + "b", 6)],
)
def test_complete_length_stops_before_a_cut_character(text, cut):
    data = text.encode()
    assert complete_length(data) == cut == len(data)
    for end in range(len(data) + 1):
        whole = complete_length(data[:end])
        assert data[:whole].decode() == data[:end].decode(errors="ignore")


def test_a_draft_of_another_vocabulary_drafts_text(cross_session):
    assert cross_session.text_level
    assert cross_session.main.exact and cross_session.draft.exact


PROMPTS = ["def add(a, b):", f"print('{WAVE} {HAN}')", f"{HAN}{WAVE}{WAVE} return self"]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_text_drafts_give_plain_decodings_tokens(cross_session, prompt):
    plain = cross_session.generate(prompt, use_draft=False, max_tokens=40).token_ids
    for mode, k in [("model", 1), ("model", 3), ("model", 8), ("model", "auto"), ("hybrid", 4)]:
        result = cross_session.generate(prompt, draft_mode=mode, draft_tokens=k, max_tokens=40)
        assert result.token_ids == plain, (mode, k)
        assert result.stats.total_draft_tokens_count > 0 or k == "auto"


def test_hybrid_pairs_lookup_with_the_text_drafter(cross_session):
    drafter = make_drafter(
        "hybrid", cross_session.draft, main=cross_session.main, draft_prompt=[1, 2]
    )
    assert isinstance(drafter, HybridDrafter) and isinstance(drafter.model, TextDrafter)


def test_the_draft_reads_the_reply_in_its_own_tokens_and_waits_for_whole_characters(
    cross_session,
):
    main, draft = cross_session.main, cross_session.draft
    prompt = cross_session.prompt_tokens("hello")
    drafter = TextDrafter(draft, main, cross_session.draft_prompt_tokens("hello"))
    reply = text_tokens(main, f"x = '{WAVE}")
    assert len(reply) > 4 and all(len(main.token_bytes(t)) == 1 for t in reply[-4:])
    drafter.prepare(prompt)
    for cut in range(1, 4):  # the main model's reply ends inside the wave
        assert drafter.options([*prompt, *reply[:-cut]], 4) == []
    [option] = drafter.options([*prompt, *reply], 4)
    proposed = drive(option.propose(4, SamplingSettings(), None))
    assert proposed.deterministic and proposed.kind == "model" and len(proposed) <= 4
    assert len(proposed.covered_by) == len(proposed)
    for token, pieces in zip(proposed.tokens, proposed.covered_by, strict=True):
        text = main.token_bytes(token).decode(errors="ignore")
        assert pieces and text in "".join(pieces)
    own = draft.tokens[len(drafter.prompt) :]
    written = b"".join(draft.token_bytes(t) for t in own)
    assert written.startswith(f"x = '{WAVE}".encode())  # the reply, then the draft's guess
    [option] = drafter.options([*prompt, *reply], 4)  # the same reply: its tokens stand
    assert drive(option.propose(4, SamplingSettings(), None)).caught_up == 1
    assert draft.tokens[: len(drafter.prompt) + 1] == [*drafter.prompt, own[0]]


def test_a_run_counts_text_drafts_in_main_model_tokens(cross_session):
    main, draft = cross_session.main, cross_session.draft
    prompt = cross_session.prompt_tokens(PROMPTS[0])
    drafter = TextDrafter(draft, main, cross_session.draft_prompt_tokens(PROMPTS[0]))
    events, stats = drain(
        speculative_decode(main, drafter, prompt, RunSettings(max_tokens=30, draft_tokens=3))
    )
    assert stats.draft_kinds and set(stats.draft_kinds) == {"model"}
    session_stats = cross_session.generate(PROMPTS[0], draft_tokens=3, max_tokens=6).stats
    assert session_stats.text_draft
    [row] = [value for label, value in stats_rows(session_stats) if label == "draft model"]
    assert row == "other (another vocabulary: drafted text, counted in main tokens)"
    assert not cross_session.generate(
        PROMPTS[0], draft_mode="lookup", max_tokens=6
    ).stats.text_draft
    assert stats.predicted_tokens_count == len(events)
    assert stats.accepted_draft_tokens_count == sum(e.source == "draft" for e in events)
    assert all(0 <= k <= 3 for k in stats.draft_lengths)


def test_a_draft_without_a_chat_template_reads_the_main_models_prompt_as_text(tmp_path):
    """A base model (Gemma-3-270M's file has no template) still drafts, from the prompt's text."""
    main = write_tiny_gguf(tmp_path / "main.gguf", seed=0, weight_type="Q8_0")
    draft = write_tiny_gguf(
        tmp_path / "base.gguf", seed=0, vocab="other", weight_type="Q8_0", chat_template=None
    )
    kind = engine_kind("llama.cpp")
    options = LoadOptions(n_ctx=256, n_threads=1, exact=True)
    session = Session(
        kind.open(resolve(str(main)), options.for_main()),
        kind.open(resolve(str(draft)), options.for_draft()),
    )
    try:
        prompt = [{"role": "user", "content": "def add(a, b):"}]
        text = b"".join(session.main.token_bytes(t) for t in session.prompt_tokens(prompt))
        assert session.draft_prompt_tokens(prompt) == session.draft.tokenize(
            text.decode(), special=False
        )
        plain = session.generate(prompt, use_draft=False, max_tokens=20).token_ids
        assert session.generate(prompt, draft_tokens=3, max_tokens=20).token_ids == plain
    finally:
        session.close()


def test_text_drafts_under_sampling_keep_the_main_models_distribution(cross_session):
    """A greedy text draft is a point mass: token x is accepted with p(x), else the token comes
    from p without x. Given the first token, the second (judged against the draft's text)
    must be distributed as the main model's p (chi-square), whichever path ran."""
    main, draft = cross_session.main, cross_session.draft
    sampling = SamplingSettings(temperature=1.0)
    prompt = cross_session.prompt_tokens(PROMPTS[0])
    draft_prompt = cross_session.draft_prompt_tokens(PROMPTS[0])
    settings = RunSettings(max_tokens=3, draft_tokens=1, temperature=1.0)
    pairs, drafted, accepted = [], 0, 0
    for seed in range(2000):
        drafter = TextDrafter(draft, main, draft_prompt)
        rng = np.random.default_rng(seed)
        events, stats = drain(speculative_decode(main, drafter, prompt, settings, rng=rng))
        pairs.append((events[0].token_id, events[1].token_id))
        drafted += stats.total_draft_tokens_count
        accepted += stats.accepted_draft_tokens_count
    assert drafted > 500 and accepted > 0, "the draft must draft, and be judged"
    top, _ = Counter(a for a, _ in pairs).most_common(1)[0]
    observed = Counter(b for a, b in pairs if a == top)
    main.rollback(0)
    p = distribution(main.evaluate([*prompt, top], n_logits=1)[0], sampling)
    assert fit_pvalue(observed, p) > 1e-3
