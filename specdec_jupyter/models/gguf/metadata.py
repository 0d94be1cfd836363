"""A GGUF file's model facts and vocabulary, as llama.cpp will see them, from its header alone.

The vocabulary facts follow llama.cpp's `llama_vocab::load`: the tokenizer model
(`tokenizer.ggml.model`) sets the vocabulary type and default BOS/EOS ids and
add-BOS/add-EOS flags, a few pre-tokenizers change those defaults, and the file's
own `tokenizer.ggml.*` keys override them (an id outside the vocabulary is ignored).
tests/test_discovery.py checks the result against llama.cpp's own view.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from gguf import Keys, LlamaFileType

from ...errors import UnusableModelError
from ..model_info import ModelInfo, size_label
from ..vocabulary import VocabularyFacts
from .header import GGUFHeader, open_gguf

NO_TOKEN = -1  # llama.cpp's LLAMA_TOKEN_NULL


@dataclass(frozen=True)
class _Vocabulary:
    """What llama.cpp decides about a vocabulary before it reads the token texts."""

    vocab_type: str
    bos_id: int
    eos_id: int
    add_bos: bool
    add_eos: bool
    size: int = 0


_BPE = _Vocabulary("BPE", 11, 11, add_bos=False, add_eos=False)
_NO_VOCAB = _Vocabulary("NONE", NO_TOKEN, NO_TOKEN, add_bos=False, add_eos=False)
TOKENIZER_DEFAULTS: dict[str, _Vocabulary] = {
    "no_vocab": _NO_VOCAB,
    "none": _NO_VOCAB,
    "llama": _Vocabulary("SPM", 1, 2, add_bos=True, add_eos=False),
    "bert": _Vocabulary("WPM", 101, NO_TOKEN, add_bos=True, add_eos=False),
    "gpt2": _BPE,
    "hybriddna": _BPE,
    "whitespace": _BPE,
    "gemma4": _Vocabulary("BPE", NO_TOKEN, NO_TOKEN, add_bos=False, add_eos=False),
    "t5": _Vocabulary("UGM", NO_TOKEN, 1, add_bos=False, add_eos=True),
    "rwkv": _Vocabulary("RWKV", NO_TOKEN, NO_TOKEN, add_bos=False, add_eos=False),
    "plamo2": _Vocabulary("PLAMO2", 1, 2, add_bos=False, add_eos=False),
}
# BPE pre-tokenizers whose default is to add BOS, or to have none (llama.cpp's list).
PRE_TOKENIZERS_ADDING_BOS = frozenset(
    {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"}
    | {"jina-v5-nano", "tekken", "chameleon"}
)
PRE_TOKENIZERS_WITHOUT_BOS = frozenset({"glm4", "chatglm-bpe"})
PRE_TOKENIZERS_FORCING_BOS = frozenset({"gemma4", "granite-embed-multi-311m"})


def read_gguf_info(path: Path) -> ModelInfo:
    """The listing facts of a GGUF file; raises UnusableModelError saying why it cannot run."""
    header = open_gguf(path)
    architecture = header.value(Keys.General.ARCHITECTURE)
    special = _special_tokens(path, header)
    parameters = sum(t.n_elements for t in header.tensor_infos)
    return ModelInfo(
        path=path,
        format="gguf",
        size_bytes=path.stat().st_size,
        architecture=architecture,
        parameters=parameters,
        size_label=header.value(Keys.General.SIZE_LABEL) or size_label(parameters),
        quantization=_quantization(header.value(Keys.General.FILE_TYPE)),
        context_length=header.value(Keys.LLM.CONTEXT_LENGTH.format(arch=architecture)),
        vocab_type=special.vocab_type,
        vocab_size=special.size,
        bos_id=special.bos_id,
        eos_id=special.eos_id,
        add_bos=special.add_bos,
        add_eos=special.add_eos,
    )


def read_gguf_vocabulary(path: Path) -> VocabularyFacts:
    """What llama.cpp's draft compatibility check compares, token texts included (~0.1 s
    for a 150k-token vocabulary)."""
    header = open_gguf(path)
    special = _special_tokens(path, header)
    texts = header.strings(Keys.Tokenizer.LIST)
    return VocabularyFacts(
        vocab_type=special.vocab_type,
        size=special.size,
        bos_id=special.bos_id,
        eos_id=special.eos_id,
        add_bos=special.add_bos,
        add_eos=special.add_eos,
        # llama.cpp renames empty token texts so that every text maps back to one id
        token_texts=tuple(text or f"[EMPTY_{i}]" for i, text in enumerate(texts)),
    )


def _special_tokens(path: Path, header: GGUFHeader) -> _Vocabulary:
    model = header.value(Keys.Tokenizer.MODEL)
    if model is None:
        architecture = header.value(Keys.General.ARCHITECTURE)
        raise UnusableModelError(
            path,
            f"it has no tokenizer (no {Keys.Tokenizer.MODEL} key; architecture {architecture}): "
            "not a language model llama.cpp can generate with (a vision projector?)",
        )
    defaults = TOKENIZER_DEFAULTS.get(model)
    if defaults is None:
        raise UnusableModelError(
            path, f"its tokenizer model {model!r} is unknown to llama.cpp; it cannot be loaded"
        )
    if defaults is _NO_VOCAB:  # llama.cpp makes up this many dummy tokens
        architecture = header.value(Keys.General.ARCHITECTURE)
        size = int(header.value(Keys.LLM.VOCAB_SIZE.format(arch=architecture)) or 0)
    else:
        size = header.array_length(Keys.Tokenizer.LIST)
        if size is None:
            raise UnusableModelError(path, f"it has no token list ({Keys.Tokenizer.LIST})")
    pre = header.value(Keys.Tokenizer.PRE) or ""
    bos_id, add_bos = defaults.bos_id, defaults.add_bos
    if defaults.vocab_type == "BPE" and pre in PRE_TOKENIZERS_ADDING_BOS:
        add_bos = True
    if defaults.vocab_type == "BPE" and pre in PRE_TOKENIZERS_WITHOUT_BOS:
        bos_id = NO_TOKEN
    add_bos = _flag(header, Keys.Tokenizer.ADD_BOS, add_bos)
    return replace(
        defaults,
        size=size,
        bos_id=_token_id(header, Keys.Tokenizer.BOS_ID, bos_id, size),
        eos_id=_token_id(header, Keys.Tokenizer.EOS_ID, defaults.eos_id, size),
        add_bos=add_bos or pre in PRE_TOKENIZERS_FORCING_BOS,
        add_eos=_flag(header, Keys.Tokenizer.ADD_EOS, defaults.add_eos),
    )


def _token_id(header: GGUFHeader, key: str, default: int, size: int) -> int:
    """The file's id when it lies inside the vocabulary, else the default (if that does)."""
    value = header.value(key)
    if value is not None and 0 <= int(value) < size:
        return int(value)
    return default if 0 <= default < size else NO_TOKEN


def _flag(header: GGUFHeader, key: str, default: bool) -> bool:
    value = header.value(key)
    return default if value is None else bool(value)


def _quantization(file_type: int | None) -> str | None:
    """`general.file_type` as people write it: 15 -> 'Q4_K_M'."""
    if file_type is None:
        return None
    try:
        name = LlamaFileType(int(file_type) & ~LlamaFileType.GUESSED).name
    except ValueError:
        return f"file type {file_type}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")
