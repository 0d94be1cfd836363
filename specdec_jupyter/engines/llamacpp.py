"""The llama.cpp engine, on llama-cpp-python's low-level API.

Why low level: the high-level `Llama` keeps logits for every position when a
draft model is attached (n_ctx x n_vocab floats, 1.2 GB for Qwen at 2048
tokens). Here a batch asks for logits only on the rows the caller verifies,
those rows are copied out at once, and rollback is one memory sequence-removal
call. The model is loaded by models/gguf/llama_load.py, which also keeps llama.cpp's log
(where each layer went, why a load failed).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path

import llama_cpp
import numpy as np

from ..errors import ModelFileError, ModelLoadError, SpecDecError
from ..models.gguf.llama_load import load_model, vocabulary_facts
from ..models.metadata import fingerprint
from ..models.vocabulary import VocabularyFacts
from .base import ChatMessage, require_room
from .chat_template import render_chat


def gpu_offload_supported() -> bool:
    """Whether this llama-cpp-python build can put layers on a GPU (CUDA, Metal, Vulkan…)."""
    return bool(llama_cpp.llama_supports_gpu_offload())


class LlamaCppEngine:
    """One GGUF model with one context (sequence 0); `gpu_layers` of its layers on the GPU
    (-1: all), the rest on the CPU with `n_threads` threads."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_batch: int = 512,
        n_threads: int | None = None,
        gpu_layers: int = 0,
        verbose: bool = False,
    ):
        self.path = Path(path)
        self.name = self.path.stem
        self._fingerprint = fingerprint(self.path)
        model, self.layer_devices = load_model(  # layer -> device, as llama.cpp placed it
            self.path, vocab_only=False, verbose=verbose, gpu_layers=gpu_layers
        )
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)

        threads = n_threads or max(1, os.cpu_count() or 1)
        context_params = llama_cpp.llama_context_default_params()
        context_params.n_ctx = n_ctx
        context_params.n_batch = n_batch
        context_params.n_ubatch = n_batch
        context_params.n_seq_max = 1
        context_params.n_threads = threads
        context_params.n_threads_batch = threads
        context = llama_cpp.llama_init_from_model(model, context_params)
        if not context:
            llama_cpp.llama_model_free(model)
            raise ModelLoadError(
                f"llama.cpp could not create a context of {n_ctx} tokens for {self.path}; "
                "try a smaller n_ctx"
            )
        self._ctx = context
        self._memory = llama_cpp.llama_get_memory(context)
        # What llama.cpp allocated, not what was asked: it pads the context (16 -> 256) and
        # caps the batch at the requested context; a chunk over the cap aborts the process.
        self.n_ctx = llama_cpp.llama_n_ctx(context)
        self.n_batch = min(llama_cpp.llama_n_batch(context), llama_cpp.llama_n_ubatch(context))
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self._tokens: list[int] = []
        self._piece = ctypes.create_string_buffer(256)
        self._chat_template = self._metadata("tokenizer.chat_template")
        self._vocabulary: VocabularyFacts | None = None

    @property
    def backend(self) -> str:
        """Where it runs, as the stats report it: the CPU, or how many layers the GPU holds."""
        threads = llama_cpp.llama_n_threads(self._ctx)
        devices = sorted({d for d in self.layer_devices.values() if d != "CPU"})
        if not devices:
            return f"llama.cpp on the CPU, {threads} threads"
        offloaded = sum(d != "CPU" for d in self.layer_devices.values())
        return (
            f"llama.cpp, {offloaded}/{len(self.layer_devices)} layers on {', '.join(devices)}, "
            f"{threads} CPU threads"
        )

    # -- text ---------------------------------------------------------------

    @property
    def tokens(self) -> list[int]:
        return self._tokens

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return self._tokenize(text.encode(), add_special=True, parse_special=special)

    def _tokenize(self, data: bytes, *, add_special: bool, parse_special: bool) -> list[int]:
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(
            self._vocab, data, len(data), buffer, capacity, add_special, parse_special
        )
        if n < 0:  # cannot happen with one token per byte plus specials, but be exact
            capacity = -n
            buffer = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(
                self._vocab, data, len(data), buffer, capacity, add_special, parse_special
            )
        return list(buffer[:n])

    def chat_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        vocabulary = self.vocabulary()
        bos = self._token_text(vocabulary.bos_id)
        text = render_chat(
            self._chat_template,
            messages,
            model_name=self.name,
            bos_token=bos,
            eos_token=self._token_text(vocabulary.eos_id),
        )
        # A template that writes BOS itself must not get a second one from the tokenizer.
        add_bos = vocabulary.add_bos and not (bos and text.startswith(bos))
        return self._tokenize(text.encode(), add_special=add_bos, parse_special=True)

    def token_bytes(self, token: int) -> bytes:
        n = llama_cpp.llama_token_to_piece(
            self._vocab, token, self._piece, len(self._piece), 0, False
        )
        if n < 0:
            self._piece = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(
                self._vocab, token, self._piece, len(self._piece), 0, False
            )
        return self._piece.raw[:n]

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    # -- evaluation -----------------------------------------------------------

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        tokens = list(tokens)
        self._require_unchanged()
        require_room(self.name, len(self._tokens), len(tokens), self.n_ctx)
        first_logit = len(tokens) - n_logits
        rows = np.empty((n_logits, self.n_vocab), dtype=np.float32)
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            wanted = [start + i >= first_logit for i in range(len(chunk))]
            self._decode(chunk, wanted)
            for i, want in enumerate(wanted):
                if want:
                    pointer = llama_cpp.llama_get_logits_ith(self._ctx, i)
                    rows[start + i - first_logit] = np.ctypeslib.as_array(
                        pointer, shape=(self.n_vocab,)
                    )
        return rows

    def _require_unchanged(self) -> None:
        """llama.cpp maps the weights from the file: one rewritten in place since loading
        would end the process with SIGBUS, so it is refused first (a stat per call)."""
        if fingerprint(self.path) != self._fingerprint:
            raise ModelFileError(
                f"{self.path} changed on disk since it was loaded; load it again "
                "(to replace a model file, write a new file and rename it over the old one)"
            )

    def _decode(self, chunk: list[int], want_logits: list[bool]) -> None:
        batch = self._batch
        n_past = len(self._tokens)
        for i, token in enumerate(chunk):
            batch.token[i] = token
            batch.pos[i] = n_past + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = want_logits[i]
        batch.n_tokens = len(chunk)
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            raise SpecDecError(
                f"{self.name}: llama_decode failed with status {status} at position {n_past} "
                "(1: no room in the KV cache; load with a larger n_ctx)"
            )
        self._tokens.extend(chunk)

    def rollback(self, n_keep: int) -> None:
        llama_cpp.llama_memory_seq_rm(self._memory, 0, n_keep, -1)
        del self._tokens[n_keep:]

    # -- facts ----------------------------------------------------------------

    def vocabulary(self) -> VocabularyFacts:
        if self._vocabulary is None:
            self._vocabulary = vocabulary_facts(self._vocab)
        return self._vocabulary

    def _token_text(self, token: int | None) -> str:
        if token is None or token < 0:
            return ""
        return llama_cpp.llama_vocab_get_text(self._vocab, token).decode("utf-8", "replace")

    def _metadata(self, key: str) -> str | None:
        size = llama_cpp.llama_model_meta_val_str(self._model, key.encode(), None, 0)
        if size < 0:
            return None
        buffer = ctypes.create_string_buffer(size + 1)
        llama_cpp.llama_model_meta_val_str(self._model, key.encode(), buffer, size + 1)
        return buffer.value.decode("utf-8", "replace")

    def close(self) -> None:
        """Free the context and the model now rather than at garbage collection."""
        if getattr(self, "_ctx", None):
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self._ctx)
            llama_cpp.llama_model_free(self._model)
            self._ctx = self._model = None

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LlamaCppEngine({str(self.path)!r}, n_ctx={self.n_ctx})"
