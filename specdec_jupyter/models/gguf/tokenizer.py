"""A Hugging Face tokenizer rebuilt from a GGUF file's vocabulary, for GGUF -> MLX conversion.

A GGUF file carries no tokenizer.json: it stores the token texts, their types and
the BPE merges as metadata. For a byte-level BPE vocabulary (`tokenizer.ggml.model`
"gpt2", as Qwen's) that is everything the `tokenizers` library needs, given the
pre-tokenizer split that the vocabulary's merges were learned with, which llama.cpp
names in `tokenizer.ggml.pre`. No NFC normalizer is added: llama.cpp applies none,
and the converted model should tokenize as the GGUF original does.

transformers can read a tokenizer out of a GGUF file itself, but that path imports
torch; building it with `tokenizers` keeps the conversion free of torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gguf import TokenType
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from ...errors import ModelFileError

# llama.cpp's `tokenizer.ggml.pre` names -> the split regex its merges were learned with.
PRE_TOKENIZER_SPLITS = {
    "qwen2": (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
        r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    ),
}


@dataclass(frozen=True)
class GGUFVocabulary:
    """The tokenizer facts of a GGUF file (`tokenizer.*` metadata)."""

    model: str
    pre: str
    tokens: Sequence[str]
    token_types: Sequence[int]
    merges: Sequence[str]
    bos_id: int | None
    eos_id: int | None
    pad_id: int | None
    add_bos: bool
    chat_template: str | None


def build_tokenizer(vocabulary: GGUFVocabulary) -> PreTrainedTokenizerFast:
    """A fast tokenizer that splits text into the same token ids as llama.cpp would."""
    if vocabulary.model != "gpt2":
        raise ModelFileError(
            f"converting a {vocabulary.model!r} vocabulary is not supported; convert-mlx "
            "handles byte-level BPE vocabularies (tokenizer.ggml.model 'gpt2', as Qwen's)"
        )
    split = PRE_TOKENIZER_SPLITS.get(vocabulary.pre)
    if split is None:
        raise ModelFileError(
            f"unknown pre-tokenizer {vocabulary.pre!r}; convert-mlx knows "
            + ", ".join(sorted(PRE_TOKENIZER_SPLITS))
        )
    tokens = list(vocabulary.tokens)
    bpe = models.BPE(
        vocab={token: i for i, token in enumerate(tokens)},
        merges=[tuple(merge.split(" ", 1)) for merge in vocabulary.merges],
    )
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    # Control tokens are matched whole and are special; user-defined ones are matched whole.
    kinds = {int(TokenType.CONTROL): True, int(TokenType.USER_DEFINED): False}
    tokenizer.add_tokens(
        [
            AddedToken(token, special=kinds[kind], normalized=False)
            for token, kind in zip(tokens, vocabulary.token_types, strict=True)
            if kind in kinds
        ]
    )
    bos = _text(tokens, vocabulary.bos_id)
    if vocabulary.add_bos and bos is not None:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocabulary.bos_id)]
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=_text(tokens, vocabulary.eos_id),
        pad_token=_text(tokens, vocabulary.pad_id),
        chat_template=vocabulary.chat_template,
        clean_up_tokenization_spaces=False,
    )


def _text(tokens: list[str], token_id: int | None) -> str | None:
    return tokens[token_id] if token_id is not None and 0 <= token_id < len(tokens) else None
