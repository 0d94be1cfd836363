"""An engine's sequences: caches of their own on one model, evaluated together in one call.

In exact mode a sequence's logits are those it gets alone, bit for bit, whatever the other
sequences put in the same calls: each sequence has a key/value stream of its own (in one
unified cache, flash attention would sum a sequence's cells in an order other sequences'
rollbacks change), and a call holds at most 7 tokens in all. Tiny models of each quantized
type; prompts past 512 tokens reach flash attention's split-cache path for one-token calls.
"""

from __future__ import annotations

import numpy as np
import pytest

from specdec_jupyter.engines.base import evaluate_together
from specdec_jupyter.engines.llamacpp import EXACT_PIECE, LlamaCppEngine
from specdec_jupyter.engines.toy import toy_engine
from specdec_jupyter.errors import ContextOverflowError
from tests.engines.test_exact import QUANTIZED, _text
from tests.support.tiny_models import write_tiny_gguf

STARTS = (30, 250, 600)  # where each sequence's prompt ends: short, long, past 512 cells
STEPS = 16


@pytest.fixture(scope="module")
def tiny_of(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sequence-types")
    return lambda weight_type: write_tiny_gguf(
        folder / f"{weight_type}.gguf", weight_type=weight_type
    )


def _alone(path, texts: list[list[int]]) -> list[list[np.ndarray]]:
    """Each text read alone on an engine of one sequence: its prompt, then a token a call."""
    engine = LlamaCppEngine(path, n_ctx=1024, n_threads=1, exact=True)
    try:
        rows = []
        for tokens, start in zip(texts, STARTS, strict=True):
            engine.rollback(0)
            seen = [engine.read_prompt(tokens[: start + 1])]
            seen += [engine.evaluate([tokens[i]], 1)[0] for i in range(start + 1, start + STEPS)]
            rows.append(seen)
        return rows
    finally:
        engine.close()


@pytest.mark.parametrize("weight_type", QUANTIZED)
def test_a_sequence_gets_its_own_logits_whatever_shares_its_calls(tiny_of, weight_type):
    """Three sequences, each round in a shuffled order, each its next token and 0-3 tokens
    that are then rolled back (a rejected draft): every row is what the text gets alone,
    also when a call holds more than 7 tokens (it is read in pieces)."""
    path = tiny_of(weight_type)
    engine = LlamaCppEngine(path, n_ctx=1024, n_threads=1, exact=True, n_seq=3)
    try:
        texts = [engine.tokenize(_text(700, seed))[: start + STEPS] for seed, start in
                 enumerate(STARTS)]  # fmt: skip
        alone = _alone(path, texts)
        sequences = [engine.sequence(i) for i in range(3)]
        for sequence, tokens, start, rows in zip(sequences, texts, STARTS, alone, strict=True):
            assert np.array_equal(sequence.read_prompt(tokens[: start + 1]), rows[0])
        rng = np.random.default_rng(0)
        read = [0, 0, 0]
        widest = 0
        for _ in range(STEPS - 1):
            calls = []
            for i in rng.permutation(3):
                position = STARTS[i] + 1 + read[i]
                junk = [int(t) for t in rng.integers(5, 300, int(rng.integers(0, 4)))]
                calls.append((sequences[i], [texts[i][position], *junk], 1 + len(junk)))
            widest = max(widest, sum(len(tokens) for _, tokens, _ in calls))
            for (sequence, _, _), rows in zip(calls, evaluate_together(calls), strict=True):
                i = sequence.seq_id
                read[i] += 1
                assert np.array_equal(rows[0], alone[i][read[i]]), (i, read[i])
                sequence.rollback(STARTS[i] + 1 + read[i])
        assert widest > EXACT_PIECE
    finally:
        engine.close()


def test_sequences_keep_their_own_tokens_and_room(tiny_of):
    engine = LlamaCppEngine(tiny_of("Q8_0"), n_ctx=256, n_threads=1, exact=True, n_seq=2)
    try:
        first, second = engine.sequence(0), engine.sequence(1)
        assert first is engine and second.seq_id == 1 and second.n_ctx == engine.n_ctx == 256
        tokens = engine.tokenize(_text(300))
        first.read_prompt(tokens[:40])
        second.read_prompt(tokens[:200])
        first.rollback(10)
        assert (first.tokens, second.tokens) == (tokens[:10], tokens[:200])
        with pytest.raises(ContextOverflowError, match="exceed the context of 256"):
            evaluate_together([(first, tokens[:5], 1), (second, tokens[:80], 1)])
        assert (len(first.tokens), len(second.tokens)) == (10, 200), "refused before any read"
    finally:
        engine.close()


def test_a_fast_engine_takes_any_mix_of_calls_as_one(tiny_of):
    """A fast engine shares one cache between its sequences: uneven calls go into one
    llama_decode, and each sequence reads what it would alone (within a call size's
    rounding: fast kernels vary with it)."""
    path = tiny_of("Q4_0")
    engine = LlamaCppEngine(path, n_ctx=256, n_threads=1, n_seq=3)
    decodes = []
    decode = engine._decode
    engine._decode = lambda rows: (decodes.append(len(rows)), decode(rows))[1]
    try:
        tokens = engine.tokenize(_text(300))
        sequences = [engine.sequence(i) for i in range(3)]
        firsts = [s.read_prompt(tokens[: 20 + 10 * i]) for i, s in enumerate(sequences)]
        decodes.clear()
        calls = [(s, tokens[20 + 10 * i : 23 + 12 * i], 1) for i, s in enumerate(sequences)]
        together = evaluate_together(calls)
        assert decodes == [sum(len(t) for _, t, _ in calls)]
        for i, sequence in enumerate(sequences):
            sequence.rollback(20 + 10 * i)
            alone = sequence.evaluate(calls[i][1], 1)
            assert np.allclose(alone, together[i], atol=0.05)
            assert firsts[i].shape == (engine.n_vocab,)
    finally:
        engine.close()


def test_toy_sequences_share_the_model_and_nothing_else():
    engine = toy_engine("toy-trigram", n_seq=2)
    first, second = engine.sequence(0), engine.sequence(1)
    prompt = engine.tokenize("the draft model")
    alone = toy_engine("toy-trigram").evaluate(prompt, 1)
    first.evaluate(prompt, 1)
    rows = evaluate_together([(first, [5], 1), (second, prompt, 1)])
    assert first.tokens == [*prompt, 5] and second.tokens == prompt
    assert np.array_equal(rows[1], alone)


def _counting_decodes(engine: LlamaCppEngine) -> list[int]:
    """The number of tokens in each llama_decode the engine makes from now on."""
    decodes: list[int] = []
    decode = LlamaCppEngine._decode
    for sequence in engine._llama.sequences:
        sequence._decode = lambda rows, s=sequence: (decodes.append(len(rows)), decode(s, rows))[1]
    return decodes


def test_a_fast_sequence_takes_the_start_of_its_prompt_from_another(tiny_of):
    """A prompt whose start another sequence holds reads only the rest, and goes on as if it
    had read it all, also once the other sequence has let those tokens go."""
    path = tiny_of("Q4_0")
    engine = LlamaCppEngine(path, n_ctx=256, n_threads=1, n_seq=3)
    alone = LlamaCppEngine(path, n_ctx=256, n_threads=1)
    try:
        tokens = engine.tokenize(_text(300))
        decodes = _counting_decodes(engine)
        engine.sequence(0).read_prompt(tokens[:40])
        alone.read_prompt(tokens[:40])
        decodes.clear()
        second = engine.sequence(1)
        first_row = second.read_prompt(tokens[:60])
        assert decodes == [20] and second.tokens == tokens[:60]
        assert np.array_equal(first_row, alone.read_prompt(tokens[:60]))
        engine.rollback(0)  # the sequence it took them from moves on
        engine.read_prompt(tokens[100:130])
        assert np.array_equal(second.evaluate(tokens[60:63], 3), alone.evaluate(tokens[60:63], 3))
    finally:
        engine.close()
        alone.close()


def test_an_exact_sequence_reads_its_whole_prompt_itself(tiny_of):
    """Sequences of an exact engine have caches apart (the module's doc): nothing is shared."""
    engine = LlamaCppEngine(tiny_of("Q8_0"), n_ctx=256, n_threads=1, exact=True, n_seq=2)
    try:
        tokens = engine.tokenize(_text(300))
        decodes = _counting_decodes(engine)
        engine.read_prompt(tokens[:40])
        decodes.clear()
        engine.sequence(1).read_prompt(tokens[:60])
        assert sum(decodes) == 60
    finally:
        engine.close()
