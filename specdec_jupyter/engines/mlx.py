"""The MLX engine: an mlx-lm model folder behind the same protocol as llama.cpp.

The model, tokenizer and chat template come from `mlx_lm.load`; the KV cache
from `make_prompt_cache`, rolled back with `trim_prompt_cache`, so a model whose
cache cannot be trimmed (recurrent state, a wrapped sliding window) is refused.
`evaluate` runs the tokens whose logits nobody asked for as prefill calls whose
logits MLX, evaluating lazily, never computes (as mlx-lm's own prefill does),
and only the rows asked for are computed and copied out.

On a CPU (Linux), MLX's float32 kernels are several times faster than its
bfloat16 / float16 ones, so the model's floating-point parameters (for a
quantized model: scales, biases, norms) are cast to float32 there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx_lm import load as mlx_lm_load
from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache
from mlx_lm.tokenizer_utils import TokenizerWrapper
from tokenizers import decoders
from transformers.convert_slow_tokenizer import bytes_to_unicode

from ..errors import ModelFileError, ModelLoadError, SpecDecError
from ..models.metadata import read_model_info
from ..models.mlx.metadata import VOCAB_TYPES
from ..models.vocabulary import VocabularyFacts
from .base import ChatMessage, read_reusing_prefix, require_room
from .chat_template import render_chat, tokens_of_chat

PREFILL_STEP = 512  # tokens per prefill call, as mlx-lm's speculative generation uses


class MlxEngine:
    """One mlx-lm model folder with one KV cache, on MLX's default device."""

    n_seq = 1  # one sequence: requests on an MLX model take turns

    def __init__(self, path: str | os.PathLike[str], *, n_ctx: int = 4096):
        self.path = Path(path)
        self.name = self.path.name
        self.n_ctx = n_ctx
        self.model, self.tokenizer, config = _load(self.path)
        if mx.default_device() == mx.cpu:
            self.model.set_dtype(mx.float32)
        self.n_vocab = int(config.get("vocab_size") or config["text_config"]["vocab_size"])
        self._cache = make_prompt_cache(self.model)
        if not can_trim_prompt_cache(self._cache):
            kinds = sorted({type(c).__name__ for c in self._cache if not c.is_trimmable()})
            raise ModelLoadError(
                f"{self.name}: its cache ({', '.join(kinds)}) cannot be rolled back, which "
                "speculative decoding needs after every rejected draft; use a model with "
                "plain attention layers"
            )
        self._tokens: list[int] = []
        self._byte_level = isinstance(self.tokenizer.backend_tokenizer.decoder, decoders.ByteLevel)
        self._pieces: list[bytes] | None = None
        self._vocabulary: VocabularyFacts | None = None
        # On the CPU, MLX gave a position the same logits read alone or with 1-7 others, and a
        # prompt read whole or in two calls, bit for bit (Qwen2.5-Coder 0.5B, 4-bit, at 40 and
        # 300 tokens of context); on Metal its kernels were not measured.
        self.exact = mx.default_device() == mx.cpu

    @property
    def backend(self) -> str:
        """Where it runs, as the stats report it."""
        if mx.default_device() == mx.gpu:
            return "mlx on the GPU (Metal); not known to be exact"
        return "mlx on the CPU; exact"

    # -- text ---------------------------------------------------------------

    @property
    def tokens(self) -> list[int]:
        return self._tokens

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return self.tokenizer.encode(text, split_special_tokens=not special)

    def chat_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The tokenizer's chat template, rendered in our sandbox within its budget
        (chat_template.py), control tokens parsed only where the template wrote them."""
        tokenizer = self.tokenizer
        template = tokenizer.chat_template
        if isinstance(template, dict):  # named templates: the default one
            template = template.get("default")
        bos, eos = tokenizer.bos_token or "", tokenizer.eos_token or ""
        text = render_chat(template, messages, model_name=self.name, bos_token=bos, eos_token=eos)
        # A template that writes BOS itself must not get a second one from the tokenizer.
        add_bos = not (bos and text.startswith(bos))

        def tokenize(piece: str, special: bool, first: bool) -> list[int]:
            return tokenizer.encode(
                piece, add_special_tokens=add_bos and first, split_special_tokens=not special
            )

        return tokens_of_chat(text, messages, tokenize, model_name=self.name)

    def token_bytes(self, token: int) -> bytes:
        if self._pieces is None:
            self._pieces = self._token_pieces()
        return self._pieces[token] if 0 <= token < len(self._pieces) else b""

    def token_pieces(self) -> list[bytes]:
        ends = self.tokenizer.eos_token_ids
        return [b"" if t in ends else self.token_bytes(t) for t in range(self.n_vocab)]

    def _token_pieces(self) -> list[bytes]:
        """Every token's bytes, as llama.cpp renders them: control tokens as nothing."""
        tokenizer = self.tokenizer
        texts = tokenizer.convert_ids_to_tokens(list(range(min(len(tokenizer), self.n_vocab))))
        pieces = [_piece_bytes(text or "", self._byte_level) for text in texts]
        for token, added in tokenizer.backend_tokenizer.get_added_tokens_decoder().items():
            if token < len(pieces):
                pieces[token] = b"" if added.special else added.content.encode()
        return pieces

    def is_end_of_generation(self, token: int) -> bool:
        return token in self.tokenizer.eos_token_ids

    # -- evaluation -----------------------------------------------------------

    def read_prompt(self, prompt: Sequence[int]) -> np.ndarray:
        return read_reusing_prefix(self, prompt)

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        tokens = list(tokens)
        require_room(self.name, len(self._tokens), len(tokens), self.n_ctx)
        split = len(tokens) - n_logits
        for start in range(0, split, PREFILL_STEP):
            chunk = tokens[start : min(start + PREFILL_STEP, split)]
            self.model(mx.array(chunk)[None], cache=self._cache)
            mx.eval([c.state for c in self._cache])
            self._tokens.extend(chunk)
        if n_logits == 0:
            return np.empty((0, self.n_vocab), dtype=np.float32)
        logits = self.model(mx.array(tokens[split:])[None], cache=self._cache)[0]
        rows = np.array(logits.astype(mx.float32))
        self._tokens.extend(tokens[split:])
        return rows

    def sequence(self, index: int) -> MlxEngine:
        return (self,)[index]

    def rollback(self, n_keep: int) -> None:
        excess = len(self._tokens) - n_keep
        if excess <= 0:
            return
        trimmed = trim_prompt_cache(self._cache, excess)
        if trimmed != excess:
            raise SpecDecError(
                f"{self.name}: its cache could roll back only {trimmed} of {excess} tokens "
                "(a sliding-window cache that has wrapped around); start a new generation"
            )
        del self._tokens[n_keep:]

    # -- facts ----------------------------------------------------------------

    def vocabulary(self) -> VocabularyFacts:
        """Facts as for llama.cpp; `size` is the tokenizer's own count, without added
        tokens, which LM Studio's mlx-engine compares between main and draft."""
        if self._vocabulary is None:
            tokenizer = self.tokenizer
            bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
            probe = tokenizer.encode("a")
            model_type = type(tokenizer.backend_tokenizer.model).__name__
            texts = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
            self._vocabulary = VocabularyFacts(
                vocab_type=VOCAB_TYPES.get(model_type, model_type),
                size=tokenizer.vocab_size,
                bos_id=bos,
                eos_id=eos,
                add_bos=bos is not None and probe[:1] == [bos],
                add_eos=eos is not None and probe[-1:] == [eos],
                token_texts=tuple(text or "" for text in texts),
            )
        return self._vocabulary

    def close(self) -> None:
        """Drop the weights and the cache now; MLX frees them when nothing refers to them."""
        self.model = self._cache = None
        self._tokens = []
        mx.clear_cache()

    def __repr__(self) -> str:
        return f"MlxEngine({str(self.path)!r}, n_ctx={self.n_ctx})"


def _load(path: Path) -> tuple[nn.Module, TokenizerWrapper, dict]:
    """mlx-lm's model, tokenizer and config, with our errors for a folder it cannot load."""
    if not path.exists():
        raise ModelFileError(
            f"model folder not found: {path}; check the path, or name a catalog model "
            "(`specdec-jupyter models fetch --list`), which is converted to MLX on first use"
        )
    info = read_model_info(path)  # what mlx-lm would trip over, said in words first
    if info.problem:
        raise ModelFileError(
            f"{path}: {info.problem}; an MLX model is a folder with config.json, "
            "model*.safetensors and tokenizer files, which `specdec-jupyter models convert-mlx "
            "FILE.gguf` makes from a GGUF file"
        )
    try:
        return mlx_lm_load(str(path), return_config=True)
    except (ValueError, KeyError, OSError, TypeError, AttributeError, RecursionError) as exc:
        raise ModelLoadError(
            f"mlx-lm could not load {path}: {type(exc).__name__}: {exc}; a newer mlx-lm may "
            "know this model"
        ) from exc


def _piece_bytes(text: str, byte_level: bool) -> bytes:
    """A token's text in the vocabulary -> the bytes it stands for.

    Byte-level BPE (GPT-2, Qwen, Llama 3) spells each byte as one printable
    character; SentencePiece writes a space as '\u2581' and raw bytes as '<0xNN>'.
    """
    if byte_level:
        byte_of = _byte_of_character()
        if all(char in byte_of for char in text):
            return bytes(byte_of[char] for char in text)
        return text.encode()
    if len(text) == 6 and text.startswith("<0x") and text.endswith(">"):
        return bytes([int(text[3:5], 16)])
    return text.replace("\u2581", " ").encode()


@cache
def _byte_of_character() -> dict[str, int]:
    return {char: byte for byte, char in bytes_to_unicode().items()}
