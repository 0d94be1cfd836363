"""The MLX engine and GGUF -> MLX conversion on tiny models: fast, and every path runs.

The tiny MLX models are the tiny GGUF pair (tiny_models.py: random llama weights,
a small byte-level BPE vocabulary) converted by our converter at float32, so the
same model is on both engines and llama.cpp is the reference for the conversion.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from mlx_lm.models.cache import ArraysCache

from specdec_jupyter import load
from specdec_jupyter.cli import main as cli
from specdec_jupyter.decoding.drafters import ModelDrafter
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.engines import mlx as mlx_engine
from specdec_jupyter.engines.llamacpp import LlamaCppEngine
from specdec_jupyter.engines.mlx import MlxEngine
from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.errors import (
    ContextOverflowError,
    ModelFileError,
    ModelLoadError,
)
from specdec_jupyter.models.gguf.header import open_gguf
from specdec_jupyter.models.gguf.tokenizer import GGUFVocabulary, build_tokenizer
from specdec_jupyter.models.mlx.catalog import convert_once
from specdec_jupyter.models.mlx.convert import convert_gguf_to_mlx
from specdec_jupyter.progress import Progress, reporting_to
from specdec_jupyter.settings import RunSettings
from tests.support.recording import RecordingEngine, drain
from tests.support.tiny_models import write_tiny_gguf

TEXT = "hello world from the draft model. def return ünïcödé 😀 <|im_start|> ok"


@pytest.fixture(scope="module")
def tiny_mlx(tiny_paths, tmp_path_factory):
    """(main, draft) MLX folders converted from the tiny GGUF pair at float32."""
    folder = tmp_path_factory.mktemp("tiny-mlx")
    return tuple(convert_gguf_to_mlx(gguf, folder / gguf.stem, bits=32) for gguf in tiny_paths)


@pytest.fixture(scope="module")
def engines(tiny_mlx):
    main, draft = MlxEngine(tiny_mlx[0], n_ctx=256), MlxEngine(tiny_mlx[1], n_ctx=256)
    yield main, draft
    main.close()
    draft.close()


@pytest.fixture(scope="module")
def llama_main(tiny_paths):
    engine = LlamaCppEngine(tiny_paths[0], n_ctx=256, n_threads=1)
    yield engine
    engine.close()


def test_conversion_keeps_the_tokenizer_of_the_gguf_file(engines, llama_main):
    mlx = engines[0]
    for special in (True, False):
        assert mlx.tokenize(TEXT, special=special) == llama_main.tokenize(TEXT, special=special)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": TEXT}]
    assert mlx.chat_tokens(messages) == llama_main.chat_tokens(messages)
    ids = range(mlx.n_vocab)
    assert [mlx.token_bytes(i) for i in ids] == [llama_main.token_bytes(i) for i in ids]
    assert [mlx.is_end_of_generation(i) for i in ids] == [
        llama_main.is_end_of_generation(i) for i in ids
    ]
    ours, theirs = mlx.vocabulary(), llama_main.vocabulary()
    assert (ours.size, ours.bos_id, ours.eos_id, ours.add_bos, ours.add_eos) == (
        theirs.size,
        theirs.bos_id,
        theirs.eos_id,
        theirs.add_bos,
        theirs.add_eos,
    )
    assert ours.token_texts == theirs.token_texts


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_conversion_keeps_the_weights_of_the_gguf_file(tmp_path, arch):
    """Same logits as llama.cpp (whose KV cache is float16), so names, shapes, biases and
    llama.cpp's Q/K row order for llama were all carried over correctly."""
    gguf = write_tiny_gguf(tmp_path / f"{arch}.gguf", arch=arch)
    mlx = MlxEngine(convert_gguf_to_mlx(gguf, tmp_path / arch, bits=32))
    llama = LlamaCppEngine(gguf, n_ctx=256, n_threads=1)
    tokens = mlx.tokenize(TEXT)
    ours = mlx.evaluate(tokens, n_logits=len(tokens))
    theirs = llama.evaluate(tokens, n_logits=len(tokens))
    np.testing.assert_allclose(ours, theirs, atol=0.05)
    assert (ours.argmax(axis=1) == theirs.argmax(axis=1)).all()
    mlx.close()
    llama.close()


def test_the_folder_appears_only_when_complete(tiny_paths, tiny_mlx, tmp_path):
    names = {p.name for p in tiny_mlx[0].iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not [p for p in tiny_mlx[0].parent.iterdir() if p.name.startswith(".")]
    with pytest.raises(FileExistsError):
        convert_gguf_to_mlx(tiny_paths[0], tiny_mlx[0], bits=32)
    assert not convert_once(tiny_paths[0], tiny_mlx[0], bits=32)
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        convert_gguf_to_mlx(tiny_mlx[0] / "config.json", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_conversion_reports_a_step_per_tensor_and_one_to_write(tiny_paths, tmp_path):
    events: list[Progress] = []
    with reporting_to(events.append):
        out = convert_gguf_to_mlx(tiny_paths[1], tmp_path / "draft", bits=32)
    tensors = len(open_gguf(tiny_paths[1]).tensor_infos)
    assert {(e.stage, e.name, e.total) for e in events} == {
        ("converting", tiny_paths[1].stem, tensors + 1)
    }
    assert [e.done for e in events] == list(range(tensors + 2))
    assert events[-1].finished and out.is_dir()


def test_quantized_conversion_loads_and_stays_close(tiny_paths, engines, tmp_path):
    folder = convert_gguf_to_mlx(tiny_paths[0], tmp_path / "q8", bits=8)
    quantized = MlxEngine(folder, n_ctx=64)
    tokens = quantized.tokenize("hello world")
    engines[0].rollback(0)
    reference = engines[0].evaluate(tokens, n_logits=1)[0]
    logits = quantized.evaluate(tokens, n_logits=1)[0]
    assert np.corrcoef(logits, reference)[0, 1] > 0.99
    quantized.close()


@pytest.mark.parametrize("k", [1, 2, 4])
def test_greedy_emits_the_main_argmax_of_each_verification_pass(engines, k):
    main_engine, draft_engine = engines
    main_engine.rollback(0)
    main = RecordingEngine(main_engine)
    tokens = main_engine.tokenize("hello world")
    generator = speculative_decode(
        main,
        ModelDrafter(draft_engine),
        tokens,
        RunSettings(max_tokens=60, draft_tokens=k),
    )
    events, stats = drain(generator)
    for offset, event in enumerate(events):
        assert event.token_id == int(main.predicted[len(tokens) + offset].argmax())
    assert max(n for n, _ in main.calls[1:]) == k + 1, "rounds verify last + k tokens at once"
    sources = Counter(e.source for e in events)
    assert sources["draft"] > 0 and sources["main"] > 0
    assert stats.rejected_draft_tokens_count > 0


def test_rollback_restores_the_cache_exactly(engines):
    engine = engines[0]
    engine.rollback(0)
    tokens = engine.tokenize("hello world from the draft model")
    before = engine.evaluate(tokens, n_logits=2)
    engine.rollback(3)
    assert engine.tokens == tokens[:3]
    after = engine.evaluate(tokens[3:], n_logits=2)
    np.testing.assert_array_equal(after, before)


def test_logits_rows_are_only_those_asked_for(engines):
    engine = engines[0]
    engine.rollback(0)
    tokens = engine.tokenize("hello world")
    assert engine.evaluate(tokens, n_logits=0).shape == (0, engine.n_vocab)
    assert engine.tokens == tokens
    rows = engine.evaluate(tokens[:2], n_logits=2)
    assert rows.shape == (2, engine.n_vocab) and rows.dtype == np.float32


def test_a_cache_that_cannot_be_trimmed_is_refused(tiny_mlx, monkeypatch):
    original = mlx_engine.mlx_lm_load

    def load_recurrent(path, **options):
        model, tokenizer, config = original(path, **options)
        model.make_cache = lambda: [ArraysCache(size=1) for _ in model.layers]
        return model, tokenizer, config

    monkeypatch.setattr(mlx_engine, "mlx_lm_load", load_recurrent)
    with pytest.raises(ModelLoadError, match="ArraysCache.*cannot be rolled back"):
        MlxEngine(tiny_mlx[0])


def test_a_session_on_mlx_drafts_and_a_draft_of_another_vocabulary_drafts_text(tiny_mlx, tmp_path):
    session = load(*tiny_mlx, engine="mlx", n_ctx=256, progress=False)
    result = session.generate("hello world", raw=True, max_tokens=30, draft_tokens=3)
    assert {e.source for e in result.events} == {"draft", "main"}
    assert result.stats.accepted_draft_tokens_count > 0
    session.close()

    other = write_tiny_gguf(tmp_path / "other.gguf", vocab="other")
    other_mlx = convert_gguf_to_mlx(other, tmp_path / "other-mlx", bits=32)
    session = load(tiny_mlx[0], other_mlx, engine="mlx", n_ctx=256, progress=False)
    assert session.text_level
    result = session.generate("hello world", raw=True, max_tokens=12, draft_tokens=2)
    assert len(result.events) == 12 and result.stats.total_draft_tokens_count > 0
    assert session.shared_tokens.count > 256  # every byte, and words
    sampled = session.generate(
        "hello world", raw=True, max_tokens=12, draft_tokens=2, temperature=1.0, seed=0
    )
    plain = session.generate(
        "hello world", raw=True, max_tokens=12, use_draft=False, temperature=1.0, seed=0
    )
    assert sampled.stats.total_draft_tokens_count > 0 and sampled.token_ids == plain.token_ids
    session.close()


def test_mlx_refuses_what_is_not_a_model_folder(tiny_paths, tmp_path):
    with pytest.raises(ModelFileError, match="convert-mlx"):
        load(tiny_paths[0], engine="mlx", progress=False)
    with pytest.raises(ModelFileError, match="not found"):
        MlxEngine(tmp_path / "missing")
    with pytest.raises(ModelFileError, match="the folder is empty"):
        MlxEngine(tmp_path)
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelFileError, match="no config.json"):
        MlxEngine(tmp_path)


def test_cli_converts_once(tiny_paths, tmp_path, capsys):
    out = tmp_path / "cli-mlx"
    arguments = ["models", "convert-mlx", str(tiny_paths[1]), "--bits", "32", "--out", str(out)]
    assert cli([*arguments, "--quiet"]) == 0
    assert "converted" in capsys.readouterr().out and (out / "config.json").is_file()
    assert cli([*arguments, "--quiet"]) == 0
    assert "already there" in capsys.readouterr().out


def test_tokenizer_builder_adds_bos_where_the_file_says_and_refuses_others():
    vocabulary = GGUFVocabulary(
        model="gpt2",
        pre="qwen2",
        tokens=["a", "b", "ab", "<s>"],
        token_types=[1, 1, 1, 3],
        merges=["a b"],
        bos_id=3,
        eos_id=3,
        pad_id=None,
        add_bos=True,
        chat_template=None,
    )
    assert build_tokenizer(vocabulary).encode("ab") == [3, 2]
    for change, message in (({"pre": "unknown"}, "pre-tokenizer"), ({"model": "llama"}, "llama")):
        with pytest.raises(ModelFileError, match=message):
            build_tokenizer(GGUFVocabulary(**{**vocabulary.__dict__, **change}))


def test_sentencepiece_pieces_become_their_bytes():
    assert mlx_engine._piece_bytes("\u2581the", byte_level=False) == b" the"
    assert mlx_engine._piece_bytes("<0x0A>", byte_level=False) == b"\n"
    assert mlx_engine._piece_bytes("\u0120the", byte_level=True) == b" the"


@pytest.mark.parametrize("engine_name", ["mlx", "llama.cpp", "toy"])
def test_every_engine_refuses_to_overflow_its_context_and_keeps_its_cache(
    engines, llama_main, engine_name
):
    engine = {"mlx": engines[0], "llama.cpp": llama_main, "toy": toy_pair()[0]}[engine_name]
    engine.rollback(0)
    tokens = engine.tokenize("hello world")
    engine.evaluate(tokens, n_logits=0)
    with pytest.raises(ContextOverflowError, match="exceed the context .* larger n_ctx"):
        engine.evaluate([tokens[-1]] * engine.n_ctx, n_logits=1)
    assert engine.tokens == tokens
