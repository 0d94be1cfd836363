"""The llama.cpp engine, on llama-cpp-python's low-level API.

Why low level: the high-level `Llama` keeps logits for every position when a
draft model is attached (n_ctx x n_vocab floats, 1.2 GB for Qwen at 2048
tokens). Here a batch asks for logits only on the rows the caller verifies,
those rows are copied out at once, and rollback is one memory sequence-removal
call. The model is loaded by models/gguf/llama_load.py, which also keeps llama.cpp's log
(where each layer went, why a load failed).

Exact mode makes a position's logits independent of how many tokens its call holds, so
speculative decoding gives plain decoding's tokens bit for bit. Measured on this CPU, three of
llama.cpp's paths change kernels with a call's size: repacked weights (a 4-row kernel beside the
1-row one), flash attention over an F16 cache (one token splits the cache across threads from
512 cells on; 64 tokens take a tiled kernel), and the tiled K-quant kernel from 8 tokens on. Exact
mode loads without repacking, keeps keys and values in BF16 (flash attention then always takes
its one-row kernel), reads calls in pieces of at most 7 tokens, and reads prompts in fixed chunks
(engines/prompt_chunks.py). It costs about 10% on a one-token call and 40% on a 4-token one
(README, "Exact mode").

With `rpc` workers (engines/rpc/), llama.cpp puts the layers on their devices. A worker's CPU
never repacks weights (it keeps them in llama.cpp's default buffers), so its layers compute as
exact mode's do; measured on this machine, a worker's exact logits equal this process's bit for
bit. Such an engine runs in a process of its own (engines/rpc/hosted.py).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from pathlib import Path

import llama_cpp
import numpy as np

from ..errors import ModelFileError, ModelLoadError, SpecDecError
from ..models.gguf.invariance import call_size_dependent
from ..models.gguf.llama_load import load_model, vocabulary_facts
from ..models.metadata import fingerprint
from ..models.vocabulary import VocabularyFacts
from ..settings import RpcWorker
from .base import ChatMessage, common_prefix_length, read_reusing_prefix, require_room
from .chat_template import render_chat
from .ggml_devices import has_gpu
from .prompt_chunks import PromptChunks
from .rpc.devices import worker_devices

EXACT_PIECE = 7  # tokens per call in exact mode: from 8 on, K-quants take the tiled kernel
PROMPT_GRID = 128  # exact mode's prompt chunks: near one call's speed, little to read again
FLASH_ATTENTION_ON = 1  # llama_flash_attn_type
GGML_TYPE_BF16 = 30


def _device_words(device: str) -> str:
    return "the CPU" if device == "CPU" else device


def gpu_offload_supported() -> bool:
    """Whether this llama-cpp-python build can put layers on a GPU (CUDA, Metal, Vulkan…)."""
    return has_gpu()


class LlamaCppEngine:
    """One GGUF model with one context (sequence 0); `gpu_layers` of its layers on the GPU,
    or on the `rpc` workers when given (-1: all), the rest on the CPU with `n_threads`
    threads; `exact`: see the module's doc."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_batch: int = 512,
        n_threads: int | None = None,
        gpu_layers: int = 0,
        exact: bool = False,
        rpc: Sequence[RpcWorker] = (),
        verbose: bool = False,
    ):
        self.path = Path(path)
        self.name = self.path.stem
        self._fingerprint = fingerprint(self.path)
        placement = worker_devices(rpc) if rpc else None
        self._device_words = placement.labels if placement is not None else {}
        model, self.layer_devices = load_model(  # layer -> device, as llama.cpp placed it
            self.path,
            vocab_only=False,
            verbose=verbose,
            gpu_layers=gpu_layers,
            repack=not exact,
            place=placement.params if placement is not None else None,
        )
        self._model = model
        self._n_layer = llama_cpp.llama_model_n_layer(model)
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
        if exact:
            context_params.flash_attn_type = FLASH_ATTENTION_ON
            context_params.type_k = context_params.type_v = GGML_TYPE_BF16
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
        self.exact_requested = exact
        self._not_exact_because = self._inexact_reason() if exact else ""
        self.exact = exact and not self._not_exact_because
        self._piece_size = EXACT_PIECE if exact else self.n_batch
        self._prompt_chunks = PromptChunks(min(PROMPT_GRID, self.n_batch)) if exact else None
        self._piece = ctypes.create_string_buffer(256)
        self._chat_template = self._metadata("tokenizer.chat_template")
        self._vocabulary: VocabularyFacts | None = None

    def _inexact_reason(self) -> str:
        """Why exact mode cannot make this model's logits independent of a call's size."""
        local = set(self.layer_devices.values()) - {"CPU", *self._device_words}
        if local:
            return "GPU kernels were not measured for it"
        floats = call_size_dependent(self.path)
        if floats:
            return f"{len(floats)} float matrices ({floats[0]}, ...) have no such kernel"
        return ""

    @property
    def backend(self) -> str:
        """Where it runs, as the stats report it: the CPU, or where the layers went (a GPU, RPC
        workers), and whether its logits are exact (see the module's doc)."""
        place = self._placement(llama_cpp.llama_n_threads(self._ctx))
        if self.exact and self._device_words:
            return f"{place}; exact if the workers compute on CPUs"
        if self.exact:
            return f"{place}; exact"
        if self.exact_requested:
            return f"{place}; not exact: {self._not_exact_because}"
        return f"{place}; fast (logits vary with a call's size)"

    def _placement(self, threads: int) -> str:
        """'llama.cpp on the CPU, 2 threads', or 'llama.cpp: 14 layers on rpc A, 14 on rpc B,
        output on rpc B, 2 CPU threads' (in the order the layers run)."""
        where = {
            layer: _device_words(self._device_words.get(device, device))
            for layer, device in sorted(self.layer_devices.items())
        }
        if set(where.values()) <= {"the CPU"}:
            return f"llama.cpp on the CPU, {threads} threads"
        counts: dict[str, int] = {}
        for layer, device in where.items():
            if layer < self._n_layer:
                counts[device] = counts.get(device, 0) + 1
        parts = [
            f"{n} {('layer' if n == 1 else 'layers') + ' ' if not i else ''}on {device}"
            for i, (device, n) in enumerate(counts.items())
        ]
        if self._n_layer in where:
            parts.append(f"output on {where[self._n_layer]}")
        return f"llama.cpp: {', '.join(parts)}, {threads} CPU threads"

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

    def read_prompt(self, prompt: Sequence[int]) -> np.ndarray:
        """Outside exact mode, the whole cached prefix is kept. In exact mode all but the last
        token are read in the prompt's chunks (prompt_chunks.py), keeping the cached ones that
        match; the last token is read on its own, as every token after it is."""
        chunks = self._prompt_chunks
        if chunks is None:
            return read_reusing_prefix(self, prompt)
        prompt = list(prompt)
        end = len(prompt) - 1
        keep = chunks.reusable(common_prefix_length(self._tokens, prompt), end)
        self.rollback(keep)
        require_room(self.name, keep, len(prompt) - keep, self.n_ctx)
        for start, stop in chunks.plan(end):
            if start >= keep:
                self._decode(prompt[start:stop], [False] * (stop - start))
                chunks.record((start, stop))
        return self.evaluate(prompt[end:], n_logits=1)[0]

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        tokens = list(tokens)
        self._require_unchanged()
        require_room(self.name, len(self._tokens), len(tokens), self.n_ctx)
        first_logit = len(tokens) - n_logits
        rows = np.empty((n_logits, self.n_vocab), dtype=np.float32)
        for start in range(0, len(tokens), self._piece_size):
            chunk = tokens[start : start + self._piece_size]
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
        if self._prompt_chunks is not None:
            self._prompt_chunks.cut(n_keep)

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
        return f"LlamaCppEngine({str(self.path)!r}, n_ctx={self.n_ctx}, exact={self.exact})"
