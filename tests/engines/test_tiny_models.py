"""Checks that the tiny test models are loadable, deterministic and usefully different."""

from __future__ import annotations

from pathlib import Path

import llama_cpp
import numpy as np
import pytest

from tests.support.tiny_models import EOS_TEXT, LOAD_KWARGS, make_tiny_pair, write_tiny_gguf


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_pair(tmp_path_factory.mktemp("tiny"))


def _load(path: Path) -> llama_cpp.Llama:
    # logits_all: in llama-cpp-python 0.3.36 Llama.scores stays zero without it
    return llama_cpp.Llama(model_path=str(path), logits_all=True, **LOAD_KWARGS)


def test_same_args_give_identical_bytes(tmp_path: Path) -> None:
    a = write_tiny_gguf(tmp_path / "a.gguf", seed=3, perturb=0.2, base_seed=1)
    b = write_tiny_gguf(tmp_path / "b.gguf", seed=3, perturb=0.2, base_seed=1)
    c = write_tiny_gguf(tmp_path / "c.gguf", seed=4, perturb=0.2, base_seed=1)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_loads_tokenizes_and_has_chat_template(pair: tuple[Path, Path]) -> None:
    llm = _load(pair[0])
    text = "hello world, def f(x): return 42\n"
    ids = llm.tokenize(text.encode(), add_bos=False)
    assert len(ids) < len(text)  # merges apply
    assert llm.detokenize(ids).decode() == text
    assert llm.detokenize([llm.token_eos()], special=True).decode() == EOS_TEXT
    assert "<|im_start|>" in llm.metadata["tokenizer.chat_template"]
    llm.eval(ids)
    logits = np.asarray(llm.scores[llm.n_tokens - 1])
    assert np.isfinite(logits).all()
    assert logits.std() > 1.0  # neither flat nor unset


def test_draft_agrees_often_but_not_always(pair: tuple[Path, Path]) -> None:
    main, draft = _load(pair[0]), _load(pair[1])
    seq = main.tokenize(b"hello world", add_bos=False)
    agree = []
    for _ in range(32):
        main.reset()
        main.eval(seq)
        draft.reset()
        draft.eval(seq)
        m = int(np.argmax(main.scores[main.n_tokens - 1]))
        d = int(np.argmax(draft.scores[draft.n_tokens - 1]))
        agree.append(m == d)
        seq.append(m)
    assert 0.3 * len(agree) < sum(agree) < len(agree)  # measured ~70% with the default perturb


def test_other_vocab_differs(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    other = _load(write_tiny_gguf(tmp_path / "other.gguf", vocab="other"))
    main = _load(pair[0])
    assert abs(other.n_vocab() - main.n_vocab()) > 128
    texts = [main.detokenize([i], special=True) for i in range(5, 50)]
    assert texts != [other.detokenize([i], special=True) for i in range(5, 50)]
