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

An engine holds `n_seq` sequences (`sequence(i)`), each a cache of its own on one context, so
several requests share the model's weights and `evaluate_many` reads all their tokens in one
llama_decode. A position's logits then depend on its own sequence alone only if its keys and
values are visited in the same order as when it runs alone: flash attention sums over a
sequence's cells in cell order, and one unified cache interleaves the sequences' cells as
rollbacks free them (measured on the 1.5B: |logit difference| up to 0.7). Exact mode therefore
gives each sequence a stream of its own (llama.cpp's `kv_unified = false`); a fast engine
shares one unified cache, which takes any mix of calls as one batch, and whose cells
sequences can share: a prompt whose start another sequence holds (the chat template's system
prompt, a conversation served there before) takes those cells rather than reading the tokens
again.

With `rpc` workers (engines/rpc/), llama.cpp puts the layers on their devices. A worker's CPU
never repacks weights (it keeps them in llama.cpp's default buffers), so its layers compute as
exact mode's do; measured on this machine, a worker's exact logits equal this process's bit for
bit. Such an engine runs in a process of its own (engines/rpc/hosted.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import llama_cpp
import numpy as np

from ..errors import ClosedError, ModelFileError, ModelLoadError, SpecDecError
from ..models.gguf.invariance import call_size_dependent
from ..models.gguf.llama_load import load_model, token_piece, vocabulary_facts, vocabulary_pieces
from ..models.metadata import fingerprint
from ..models.vocabulary import VocabularyFacts
from ..settings import RpcWorker
from .base import ChatMessage, EngineCall, common_prefix_length, read_reusing_prefix, require_room
from .chat_template import render_chat, tokens_of_chat
from .ggml_devices import has_gpu
from .prompt_chunks import PromptChunks
from .rpc.devices import worker_devices

EXACT_PIECE = 7  # tokens per call in exact mode: from 8 on, K-quants take the tiled kernel
PROMPT_GRID = 128  # exact mode's prompt chunks: near one call's speed, little to read again
FLASH_ATTENTION_ON = 1  # llama_flash_attn_type
DECODE_STATUS = {  # llama_decode's answers (llama.h), with what a user can do
    1: "no room in the KV cache; load with a larger n_ctx",
    2: "the call was aborted",
    -1: "llama.cpp refused the batch (a token id outside the vocabulary?)",
}
GGML_TYPE_BF16 = 30


Method = TypeVar("Method", bound=Callable[..., Any])


def _while_open(method: Method) -> Method:
    """Run `method` holding the engine's guard, refusing it once the engine is closed: a
    call on freed llama.cpp memory would end the process (SIGSEGV), not raise."""

    @functools.wraps(method)
    def guarded(self: LlamaCppEngine, *args: Any, **kwargs: Any) -> Any:
        with self._llama.lock:
            if not self._llama.context:
                raise ClosedError(
                    f"{self.name} was closed (session.close(), or unloaded to make room); "
                    "load it again"
                )
            return method(self, *args, **kwargs)

    return guarded  # type: ignore[return-value]


def _device_words(device: str) -> str:
    return "the CPU" if device == "CPU" else device


def gpu_offload_supported() -> bool:
    """Whether this llama-cpp-python build can put layers on a GPU (CUDA, Metal, Vulkan…)."""
    return has_gpu()


class _Context:
    """A llama.cpp model and the one context its sequences share; its lock keeps the
    sequences' calls (which may come from several threads) one at a time."""

    def __init__(
        self, model: llama_cpp.llama_model_p, context: llama_cpp.llama_context_p, n_batch: int
    ):
        self.model = model
        self.context = context
        self.memory = llama_cpp.llama_get_memory(context)
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.lock = threading.RLock()
        self.sequences: list[LlamaCppEngine] = []

    def close(self) -> None:
        with self.lock:
            if self.context:
                llama_cpp.llama_batch_free(self.batch)
                llama_cpp.llama_free(self.context)
                llama_cpp.llama_model_free(self.model)
                self.context = self.model = None


class LlamaCppEngine:
    """One GGUF model with one context of `n_seq` sequences, each with room for `n_ctx`
    tokens: the engine is sequence 0, `sequence(i)` the others. `gpu_layers` of its layers on
    the GPU, or on the `rpc` workers when given (-1: all), the rest on the CPU with
    `n_threads` threads; `exact`: see the module's doc."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_batch: int = 512,
        n_threads: int | None = None,
        gpu_layers: int = 0,
        exact: bool = False,
        n_seq: int = 1,
        rpc: Sequence[RpcWorker] = (),
        verbose: bool = False,
    ):
        self.path = Path(path)
        self.name = self.path.stem
        self._fingerprint = fingerprint(self.path)
        threads = n_threads or max(1, os.cpu_count() or 1)
        context_params = llama_cpp.llama_context_default_params()
        context_params.n_ctx = n_ctx * n_seq
        context_params.n_batch = n_batch
        context_params.n_ubatch = n_batch
        context_params.n_seq_max = n_seq
        context_params.kv_unified = not exact  # exact: a stream per sequence (module doc)
        context_params.n_threads = threads
        context_params.n_threads_batch = threads
        if exact:
            context_params.flash_attn_type = FLASH_ATTENTION_ON
            context_params.type_k = context_params.type_v = GGML_TYPE_BF16
        placement = worker_devices(rpc) if rpc else None
        self._device_words = placement.labels if placement is not None else {}
        with placement or contextlib.nullcontext():  # the workers held until the context is
            model, self.layer_devices = load_model(  # layer -> device, as llama.cpp placed it
                self.path,
                vocab_only=False,
                verbose=verbose,
                gpu_layers=gpu_layers,
                repack=not exact,
                place=placement.params if placement is not None else None,
            )
            context = llama_cpp.llama_init_from_model(model, context_params)
        self._n_layer = llama_cpp.llama_model_n_layer(model)
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        if not context:
            llama_cpp.llama_model_free(model)
            raise ModelLoadError(
                f"llama.cpp could not create a context of {n_seq} x {n_ctx} tokens for "
                f"{self.path}; try a smaller n_ctx or fewer parallel sequences"
            )
        # What llama.cpp allocated, not what was asked: it pads the context (16 -> 256) and
        # caps the batch at the requested context; a chunk over the cap aborts the process.
        self.n_seq = n_seq
        shared = llama_cpp.llama_n_ctx(context) // n_seq  # a unified cache, shared out evenly
        self.n_ctx = llama_cpp.llama_n_ctx_seq(context) if exact else shared
        self.n_batch = min(llama_cpp.llama_n_batch(context), llama_cpp.llama_n_ubatch(context))
        self._llama = _Context(model, context, self.n_batch)
        self.exact_requested = exact
        self._not_exact_because = self._inexact_reason() if exact else ""
        self.exact = exact and not self._not_exact_because
        self._piece_size = EXACT_PIECE if exact else self.n_batch
        self._chat_template = self._metadata("tokenizer.chat_template")
        self._vocabulary: VocabularyFacts | None = None
        self._pieces: list[bytes] | None = None
        self._start_sequence(0)
        self._sequences = [self, *(self._view(i) for i in range(1, n_seq))]
        self._llama.sequences = self._sequences

    def _start_sequence(self, seq_id: int) -> None:
        """What is this sequence's own: its id, its tokens, its prompt chunks."""
        self.seq_id = seq_id
        self._tokens: list[int] = []
        grid = min(PROMPT_GRID, self.n_batch)
        self._prompt_chunks = PromptChunks(grid) if self.exact_requested else None
        self._piece = ctypes.create_string_buffer(256)

    def _view(self, seq_id: int) -> LlamaCppEngine:
        view = object.__new__(LlamaCppEngine)
        view.__dict__.update(self.__dict__)  # the model, its context and its facts: shared
        view._start_sequence(seq_id)
        return view

    def sequence(self, index: int) -> LlamaCppEngine:
        """Sequence `index` of this engine's context: a cache of its own on the same model."""
        return self._sequences[index]

    @property
    def batch_key(self) -> object:
        """What evaluates this engine's sequences together (`evaluate_many`): its context."""
        return self._llama

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
    @_while_open
    def backend(self) -> str:
        """Where it runs, as the stats report it: the CPU, or where the layers went (a GPU, RPC
        workers), and whether its logits are exact (see the module's doc)."""
        place = self._placement(llama_cpp.llama_n_threads(self._llama.context))
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

    @_while_open
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

        def tokenize(piece: str, special: bool, first: bool) -> list[int]:
            data = piece.encode()
            return self._tokenize(data, add_special=add_bos and first, parse_special=special)

        return tokens_of_chat(text, messages, tokenize, model_name=self.name)

    @_while_open
    def token_bytes(self, token: int) -> bytes:
        return token_piece(self._vocab, token, self._piece)

    @_while_open
    def token_pieces(self) -> list[bytes]:
        if self._pieces is None:
            self._pieces = vocabulary_pieces(self._vocab)
        return self._pieces

    @_while_open
    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    # -- evaluation -----------------------------------------------------------

    @_while_open
    def read_prompt(self, prompt: Sequence[int]) -> np.ndarray:
        """Outside exact mode, the whole cached prefix is kept. In exact mode all but the last
        token are read in the prompt's chunks (prompt_chunks.py), keeping the cached ones that
        match; the last token is read on its own, as every token after it is."""
        chunks = self._prompt_chunks
        if chunks is None:
            self._share_longer_prefix(prompt)
            return read_reusing_prefix(self, prompt)
        self._require_unchanged()
        prompt = list(prompt)
        end = len(prompt) - 1
        keep = chunks.reusable(common_prefix_length(self._tokens, prompt), end)
        self.rollback(keep)
        require_room(self.name, keep, len(prompt) - keep, self.n_ctx)
        for start, stop in chunks.plan(end):
            if start >= keep:
                self._decode([(self, token, False) for token in prompt[start:stop]])
                chunks.record((start, stop))
        return self.evaluate(prompt[end:], n_logits=1)[0]

    def _share_longer_prefix(self, prompt: Sequence[int]) -> None:
        """Take the start of `prompt` from another sequence whose cache holds more of it than
        this one's (the chat template's system prompt, a document several requests ask about,
        a conversation another sequence served): a unified cache (not exact mode) lets
        sequences share cells, so those tokens are not read again."""
        own = common_prefix_length(self._tokens, prompt)
        donor, most = None, own
        for other in self._llama.sequences:
            if other is self:
                continue
            held = min(common_prefix_length(other._tokens, prompt), len(prompt) - 1)
            if held > most:
                donor, most = other, held
        if donor is None:
            return
        llama_cpp.llama_memory_seq_rm(self._llama.memory, self.seq_id, own, -1)
        llama_cpp.llama_memory_seq_cp(self._llama.memory, donor.seq_id, self.seq_id, own, most)
        del self._tokens[own:]
        self._tokens.extend(prompt[own:most])

    @_while_open
    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        return self.evaluate_many([(self, tokens, n_logits)])[0]

    @_while_open
    def evaluate_many(self, calls: Sequence[EngineCall]) -> list[np.ndarray]:
        """`evaluate` for several sequences of this engine at once: their tokens go into one
        llama_decode (in exact mode, pieces of at most 7 tokens in all), so the weights are
        read once for all of them. Each call's rows, in order."""
        self._require_unchanged()
        for view, tokens, _ in calls:
            require_room(self.name, len(view.tokens), len(tokens), self.n_ctx)
        results = [np.empty((n, self.n_vocab), dtype=np.float32) for _, _, n in calls]
        rows = [  # (sequence, token, call, its row in the call's result; < 0: none)
            (view, token, i, j - (len(tokens) - n))
            for i, (view, tokens, n) in enumerate(calls)
            for j, token in enumerate(tokens)
        ]
        for start in range(0, len(rows), self._piece_size):
            piece = rows[start : start + self._piece_size]
            self._decode([(view, token, row >= 0) for view, token, _, row in piece])
            for i, (_, _, call, row) in enumerate(piece):
                if row >= 0:
                    pointer = llama_cpp.llama_get_logits_ith(self._llama.context, i)
                    results[call][row] = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        return results

    def _require_unchanged(self) -> None:
        """llama.cpp maps the weights from the file: one rewritten in place since loading
        would end the process with SIGBUS, so it is refused first (a stat per call)."""
        if fingerprint(self.path) != self._fingerprint:
            raise ModelFileError(
                f"{self.path} changed on disk since it was loaded; load it again "
                "(to replace a model file, write a new file and rename it over the old one)"
            )

    def _decode(self, rows: Sequence[tuple[LlamaCppEngine, int, bool]]) -> None:
        """One llama_decode of (sequence, token, logits wanted) rows; each sequence's tokens
        come in order after those its cache holds."""
        batch = self._llama.batch
        added: dict[LlamaCppEngine, list[int]] = {}
        for i, (view, token, want) in enumerate(rows):
            appended = added.setdefault(view, [])
            batch.token[i] = token
            batch.pos[i] = len(view._tokens) + len(appended)
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = view.seq_id
            batch.logits[i] = want
            appended.append(token)
        batch.n_tokens = len(rows)
        status = llama_cpp.llama_decode(self._llama.context, batch)
        if status != 0:
            meaning = DECODE_STATUS.get(status, "llama.cpp failed inside the call")
            where = ", ".join(f"sequence {v.seq_id} at {len(v._tokens)}" for v in added)
            raise SpecDecError(
                f"{self.name}: llama_decode failed with status {status} ({where}): {meaning}"
            )
        for view, appended in added.items():
            view._tokens.extend(appended)

    @_while_open
    def rollback(self, n_keep: int) -> None:
        llama_cpp.llama_memory_seq_rm(self._llama.memory, self.seq_id, n_keep, -1)
        del self._tokens[n_keep:]
        if self._prompt_chunks is not None:
            self._prompt_chunks.cut(n_keep)

    # -- facts ----------------------------------------------------------------

    @_while_open
    def vocabulary(self) -> VocabularyFacts:
        if self._vocabulary is None:
            self._vocabulary = vocabulary_facts(self._vocab)
        return self._vocabulary

    @_while_open
    def _token_text(self, token: int | None) -> str:
        if token is None or token < 0:
            return ""
        return llama_cpp.llama_vocab_get_text(self._vocab, token).decode("utf-8", "replace")

    @_while_open
    def _metadata(self, key: str) -> str | None:
        model = self._llama.model
        size = llama_cpp.llama_model_meta_val_str(model, key.encode(), None, 0)
        if size < 0:
            return None
        buffer = ctypes.create_string_buffer(size + 1)
        llama_cpp.llama_model_meta_val_str(model, key.encode(), buffer, size + 1)
        return buffer.value.decode("utf-8", "replace")

    def close(self) -> None:
        """Free the context and the model (every sequence's) now rather than at garbage
        collection; a call in flight on another thread ends first, and any later call is a
        ClosedError."""
        if "_llama" in self.__dict__:
            self._llama.close()

    def __del__(self) -> None:
        if getattr(self, "seq_id", None) == 0:
            self.close()

    def __repr__(self) -> str:
        return (
            f"LlamaCppEngine({str(self.path)!r}, n_ctx={self.n_ctx}, exact={self.exact}, "
            f"sequence {self.seq_id} of {self.n_seq})"
        )
