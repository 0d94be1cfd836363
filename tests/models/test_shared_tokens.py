"""The tokens two vocabularies share (Timor et al. 2025's intersection): the map, on pieces
written by hand and on tiny GGUF models of two vocabularies, and the q it gives."""

from __future__ import annotations

import numpy as np
import pytest

from specdec_jupyter.decoding.sampling import SamplingSettings, distribution
from specdec_jupyter.decoding.text_drafts import shared_between
from specdec_jupyter.engines.registry import engine_kind
from specdec_jupyter.engines.resolve import resolve
from specdec_jupyter.models.shared_tokens import MIN_SHARE, shared_tokens
from specdec_jupyter.settings import LoadOptions
from tests.support.tiny_models import SPECIALS, write_tiny_gguf

# A SentencePiece-like draft: a byte token and a word for "A", a control token, a token the
# main model lacks. The main model spells " the" twice (its tokenizer's choice is id 4).
DRAFT = [b"", b"A", b" the", b"A", b"\xe4", b"zzz", b" cat"]
MAIN = [b"", b" cat", b"A", b" the", b" the", b"\xe4", b"q"]


def test_the_map_pairs_tokens_of_the_same_bytes_and_never_those_that_write_nothing():
    shared = shared_tokens(DRAFT, MAIN, lambda piece, ids: ids[-1])
    pairs = dict(zip(shared.draft_ids.tolist(), shared.main_ids.tolist(), strict=True))
    assert pairs == {1: 2, 2: 4, 3: 2, 4: 5, 6: 1}  # no 0 (writes nothing), no "zzz"
    assert shared.count == 5 and shared.share == pytest.approx(5 / 7)
    assert shared_tokens(DRAFT, MAIN).main_ids.tolist() == [2, 3, 2, 5, 1]  # lowest id
    assert shared.samples and "5 tokens both vocabularies spell alike (71.4%" in shared.describe()


def test_q_is_the_draft_distribution_on_shared_tokens_renormalised_on_main_ids():
    shared = shared_tokens(DRAFT, MAIN, lambda piece, ids: ids[-1])
    probs = np.array([0.3, 0.1, 0.2, 0.05, 0.05, 0.2, 0.1])
    q, mass = shared.restricted(probs)
    assert mass == pytest.approx(0.5)
    assert q.shape == (len(MAIN),) and q.sum() == pytest.approx(1.0)
    assert q.tolist() == pytest.approx([0, 0.2, 0.3, 0, 0.4, 0.1, 0])  # both "A"s added
    assert shared.draft_token(2, probs) == 1  # of the two "A"s, the likelier one
    assert shared.draft_token(2, np.array([0, 0.1, 0, 0.9, 0, 0, 0])) == 3
    assert shared.draft_token(4, probs) == 2
    q, mass = shared.restricted(np.array([1.0, 0, 0, 0, 0, 0, 0]))
    assert mass == 0 and not q.any()


def test_vocabularies_that_share_too_little_draft_greedily():
    draft = [bytes([i]) * 3 for i in range(100)]
    shared = shared_tokens(draft, [draft[0], b"x"])
    assert shared.share < MIN_SHARE and not shared.samples
    assert "its drafts stay greedy" in shared.describe()


@pytest.fixture(scope="module")
def tiny_vocabularies(tmp_path_factory):
    """Tiny main model ("bpe", 384 tokens) and a draft of another vocabulary ("other", 600)."""
    folder = tmp_path_factory.mktemp("vocabularies")
    kind = engine_kind("llama.cpp")
    options = LoadOptions(n_ctx=64, n_threads=1)
    main = kind.open(resolve(str(write_tiny_gguf(folder / "main.gguf"))), options)
    draft = kind.open(resolve(str(write_tiny_gguf(folder / "o.gguf", vocab="other"))), options)
    yield draft, main
    draft.close()
    main.close()


def test_tiny_models_share_their_bytes_and_words_but_not_their_control_tokens(tiny_vocabularies):
    draft, main = tiny_vocabularies
    shared = shared_between(draft, main)
    assert shared.draft_size == draft.n_vocab and shared.main_size == main.n_vocab
    for d, m in zip(shared.draft_ids.tolist(), shared.main_ids.tolist(), strict=True):
        assert draft.token_bytes(d) == main.token_bytes(m) != b""
    controls = [draft.tokenize(text)[0] for text in SPECIALS]
    assert not set(controls) & set(shared.draft_ids.tolist())
    assert all(draft.token_bytes(t) == b"" for t in controls)
    spelled = {draft.token_bytes(t) for t in shared.draft_ids.tolist()}
    assert spelled >= {bytes([byte]) for byte in range(256)}  # whole characters or not
    assert shared.count > 256 + 16  # words too: " in", " if", ...
    assert len(set(shared.main_ids.tolist())) == shared.count  # one for one here


def test_q_from_a_tiny_draft_is_a_distribution_over_the_main_vocabulary(tiny_vocabularies):
    draft, main = tiny_vocabularies
    shared = shared_between(draft, main)
    logits = draft.evaluate(draft.tokenize("def add(a, b):"), n_logits=1)[0]
    draft.rollback(0)
    for sampling in (SamplingSettings(temperature=1.0), SamplingSettings(0.7, top_k=20)):
        probs = distribution(logits, sampling)
        q, mass = shared.restricted(probs)
        assert q.shape == (main.n_vocab,) and q.min() >= 0 and q.sum() == pytest.approx(1.0)
        assert 0 < mass <= 1
        outside = np.ones(main.n_vocab, bool)
        outside[shared.main_ids] = False
        assert not q[outside].any()
        assert q[shared.main_ids] == pytest.approx(probs[shared.draft_ids] / mass)
