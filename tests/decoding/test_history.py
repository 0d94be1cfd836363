"""The history of earlier generations: bounded in memory, kept apart per vocabulary, and fed
by every generation a session runs."""

from __future__ import annotations

import tracemalloc
from dataclasses import replace

from specdec_jupyter.decoding.history import (
    HISTORY,
    HISTORY_NGRAMS,
    MIN_DOCUMENT,
    HistoryIndex,
    HistoryStore,
    vocabulary_key,
)
from specdec_jupyter.engines.toy import toy_engine
from specdec_jupyter.sessions.session import Session


def generation(seed: int, length: int = 100) -> list[int]:
    return [(seed * 7919 + i * 31) % 50_000 for i in range(length)]


def test_the_token_and_document_bounds_hold_however_much_is_added():
    history = HistoryIndex(max_tokens=1_000, max_documents=6)
    for seed in range(40):
        history.add(generation(seed, length=30 + seed * 7))
        assert history.tokens <= 1_000 and history.documents <= 6
        assert history.entries <= history.tokens * len(HISTORY_NGRAMS)
    assert history.find(generation(39, length=300)[:3]) is not None, "the newest is kept"
    assert history.find(generation(0)[:3]) is None, "the oldest went first"


def test_a_generation_longer_than_the_bound_keeps_its_end():
    history = HistoryIndex(max_tokens=50)
    history.add(generation(1, length=80))
    assert history.tokens == 50
    assert history.find(generation(1, length=80)[-5:-2]) is not None


def test_short_and_repeated_generations_take_no_extra_room():
    history = HistoryIndex()
    history.add(generation(1, length=MIN_DOCUMENT - 1))
    assert history.documents == 0
    history.add(generation(2))
    history.add(generation(3))
    history.add(generation(2))
    assert history.documents == 2, "a regenerated identical reply is kept once"
    tokens, start = history.find(generation(2)[10:12])
    assert tokens == generation(2) and start == 10


def test_memory_per_indexed_token_stays_within_the_documented_bound():
    history = HistoryIndex(max_tokens=20_000, max_documents=64)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for seed in range(40):
        history.add(generation(seed, length=500))
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert history.tokens == 20_000
    assert used / history.tokens < 600, f"{used / history.tokens:.0f} bytes per token"


def test_the_store_keeps_one_history_per_vocabulary_and_a_few_vocabularies():
    store = HistoryStore(max_vocabularies=2)
    a, b = store.for_vocabulary("a"), store.for_vocabulary("b")
    assert a is not b and store.for_vocabulary("a") is a
    a.add(generation(1))
    assert b.find(generation(1)[:2]) is None, "one vocabulary's tokens never draft for another"
    store.for_vocabulary("c")  # "b" was used least recently
    assert store.for_vocabulary("a") is a and store.for_vocabulary("b") is not b


def test_the_vocabulary_key_changes_with_any_token_text():
    facts = toy_engine("toy-trigram").vocabulary()
    texts = list(facts.token_texts)
    texts[7] = texts[7] + "x"
    assert vocabulary_key(facts) == vocabulary_key(toy_engine("toy-trigram").vocabulary())
    assert vocabulary_key(facts) != vocabulary_key(replace(facts, token_texts=tuple(texts)))
    assert vocabulary_key(facts) != vocabulary_key(replace(facts, vocab_type="bpe"))


def test_a_session_remembers_what_it_wrote_and_drafts_from_it():
    session = Session(toy_engine("toy-trigram"), draft_mode="lookup")
    prompt = "the cat sat on the mat"
    run = dict(raw=True, max_tokens=24, temperature=1.0, seed=7, draft_tokens=4)  # not the clock
    first = session.generate(prompt, **run)
    history = session.history
    assert history.documents == 1 and history.tokens == 24
    again = session.generate(prompt, **run)
    assert [e.token_id for e in again.events] == [e.token_id for e in first.events]
    assert again.stats.accepted_draft_tokens_count > first.stats.accepted_draft_tokens_count
    assert history.documents == 1, "the same reply again takes no more room"
    other_vocabulary = HISTORY.for_vocabulary("another tokenizer")
    assert other_vocabulary.documents == 0
