"""Exact mode: a position's logits do not depend on how many tokens its call holds, so every
draft mode and k gives plain decoding's tokens bit for bit.

Tiny models of each weight type show which types llama.cpp can serve exactly (quantized ones)
and which it cannot (float matrices, multiplied by llamafile's tinyBLAS from two tokens on);
prompts longer than 512 tokens reach flash attention's split-cache path for one-token calls.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specdec_jupyter import load
from specdec_jupyter.engines.llamacpp import EXACT_PIECE, LlamaCppEngine
from specdec_jupyter.engines.prompt_chunks import PromptChunks
from tests.support.tiny_models import make_tiny_pair, write_tiny_gguf

QUANTIZED = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]
FLOATS = ["F32", "F16", "BF16"]
WORDS = [
    "the",
    "model",
    "token",
    "draft",
    "verify",
    "accept",
    "value",
    "index",
    "result",
    "python",
    "function",
    "test",
]


def _text(n_words: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, n_words))


def _rows_by_call_size(engine: LlamaCppEngine, tokens: list[int], start: int, sizes) -> list:
    """The logits of tokens[start:] read in calls of the given sizes, after reading the rest
    as a prompt."""
    engine.rollback(0)
    engine.read_prompt(tokens[: start + 1])
    engine.rollback(start)
    rows, position = [], start
    for size in sizes:
        rows.append(engine.evaluate(tokens[position : position + size], n_logits=size))
        position += size
    return np.concatenate(rows)


@pytest.fixture(scope="module")
def tiny_of(tmp_path_factory):
    folder = tmp_path_factory.mktemp("types")
    return lambda weight_type: write_tiny_gguf(
        folder / f"{weight_type}.gguf", weight_type=weight_type
    )


@pytest.mark.parametrize("weight_type", QUANTIZED)
@pytest.mark.parametrize("context", [30, 600])  # 600: past flash attention's 512-cell split
def test_quantized_models_give_a_position_one_set_of_logits(tiny_of, weight_type, context):
    engine = LlamaCppEngine(tiny_of(weight_type), n_ctx=1024, n_threads=2, exact=True)
    try:
        assert engine.exact and engine.backend.endswith("; exact")
        tokens = engine.tokenize(_text(400))[: context + 9]
        alone = _rows_by_call_size(engine, tokens, context, [1] * 9)
        for sizes in ([9], [2, 7], [3, 3, 3], [5, 4]):
            together = _rows_by_call_size(engine, tokens, context, sizes)
            assert np.array_equal(alone, together), sizes
    finally:
        engine.close()


@pytest.mark.parametrize("weight_type", FLOATS)
def test_float_matrices_cannot_be_exact_and_the_backend_says_why(tiny_of, weight_type):
    engine = LlamaCppEngine(tiny_of(weight_type), n_ctx=256, n_threads=2, exact=True)
    try:
        assert not engine.exact
        assert f"not exact: 15 float matrices (blk.0.attn_q.weight ({weight_type})" in (
            engine.backend
        )
        tokens = engine.tokenize(_text(60))[:40]
        alone = _rows_by_call_size(engine, tokens, 30, [1] * 8)
        assert not np.array_equal(alone, _rows_by_call_size(engine, tokens, 30, [8])), (
            "tinyBLAS sums float products in another order than the one-token dot product"
        )
    finally:
        engine.close()


def test_exact_calls_are_read_in_pieces_the_kernels_treat_alike(tiny_of):
    engine = LlamaCppEngine(tiny_of("Q8_0"), n_ctx=256, n_threads=1, exact=True)
    sizes: list[int] = []
    decode = engine._decode
    engine._decode = lambda rows: (sizes.append(len(rows)), decode(rows))[1]
    try:
        tokens = engine.tokenize(_text(40))
        engine.read_prompt(tokens[:20])
        sizes.clear()
        engine.evaluate(tokens[20:36], n_logits=16)
        assert sizes == [EXACT_PIECE, EXACT_PIECE, 16 - 2 * EXACT_PIECE]
    finally:
        engine.close()


def test_a_prompt_read_after_others_gives_what_a_fresh_read_gives(tiny_of):
    """The cache keeps a prompt chunk only where the new prompt is read in that same chunk:
    a longer prompt, the same prompt again, a prompt after a generation, all match a fresh
    engine bit for bit."""
    path = tiny_of("Q4_1")
    tokens = LlamaCppEngine(path, n_ctx=1024, n_threads=1, exact=True).tokenize(_text(600, 1))
    used = LlamaCppEngine(path, n_ctx=1024, n_threads=1, exact=True)
    try:
        for end in (300, 300, 301, 420, 150, 700, 700):
            fresh = LlamaCppEngine(path, n_ctx=1024, n_threads=1, exact=True)
            try:
                expected = fresh.read_prompt(tokens[:end])
            finally:
                fresh.close()
            assert np.array_equal(used.read_prompt(tokens[:end]), expected), end
            used.evaluate(tokens[end : end + 5], n_logits=1)  # a generation's calls follow
    finally:
        used.close()


def test_prompt_chunks_keep_only_the_chunks_a_new_prompt_reads_alike():
    chunks = PromptChunks(grid=128)
    assert chunks.plan(300) == [(0, 128), (128, 256), (256, 300)]
    for chunk in chunks.plan(300):
        chunks.record(chunk)
    assert chunks.reusable(common=300, end=300) == 300  # the same prompt: every chunk
    assert chunks.reusable(common=300, end=420) == 256  # longer: (256, 300) becomes (256, 384)
    assert chunks.reusable(common=200, end=420) == 128  # what it shares ends inside a chunk
    chunks.cut(250)
    assert chunks.read == [(0, 128)]


@pytest.fixture(scope="module", params=["Q8_0", "Q4_0", "Q5_1"])
def exact_pair(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"pair-{request.param}")
    session = load(
        *make_tiny_pair(folder, weight_type=request.param),
        n_ctx=512,
        n_threads=1,
        exact=True,
        progress=False,
    )
    assert session.main.exact and session.draft.exact
    yield session
    session.close()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    mode=st.sampled_from(["model", "lookup", "hybrid"]),
    k=st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, "auto"]),
    temperature=st.sampled_from([0.0, 0.7, 1.3]),
    stream=st.booleans(),
)
def test_every_mode_and_k_gives_plain_decodings_tokens(
    exact_pair, seed, mode, k, temperature, stream
):
    prompt = _text(8 + seed % 40, seed)
    options = {"max_tokens": 40, "temperature": temperature, "seed": seed, "raw": True}
    plain = exact_pair.generate(prompt, use_draft=False, **options).token_ids
    run = {"draft_mode": mode, "draft_tokens": k, **options}
    if stream:
        tokens = [event.token_id for event in exact_pair.stream(prompt, **run)]
    else:
        tokens = exact_pair.generate(prompt, **run).token_ids
    assert tokens == plain
