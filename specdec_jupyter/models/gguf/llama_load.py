"""A GGUF file loaded by llama.cpp: the one way a file reaches it, the one log callback, and
the vocabulary read without weights.

llama.cpp reports through one process-wide log callback, set here at import: it keeps the
recent messages, to explain a load that fails, and the device each layer of a load was put
on, which llama.cpp tells only in its log. `load_model` loads a whole model for the
llama.cpp engine (engines/llamacpp.py), reporting how far it has got through llama.cpp's
load progress callback (progress.py), or only its vocabulary, for `read_vocabulary`,
`end_of_generation_ids` and `read_token_pieces` (0.4 s for Qwen).
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import llama_cpp

from ...errors import ModelFileError, ModelLoadError
from ...progress import Tracker
from ..names import short_name
from ..vocabulary import VocabularyFacts
from .check import check_gguf, diagnose_gguf

# llama.cpp's enum llama_vocab_type.
VOCAB_TYPE_NAMES = {0: "NONE", 1: "SPM", 2: "BPE", 3: "WPM", 4: "UGM", 5: "RWKV", 6: "PLAMO2"}
GGML_LOG_LEVEL_ERROR = 4
MAX_LAYERS = 999  # llama-server's "all layers"

LAYER_DEVICE = re.compile(r"layer +(\d+) assigned to device (\w+)")

_log_lines: deque[str] = deque(maxlen=20)
_verbose = False
_layer_devices: dict[int, str] = {}  # where the current load puts each layer: "CPU", "CUDA0"…


@llama_cpp.llama_log_callback
def _log_callback(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    """Keep llama.cpp's recent messages to explain a failure, and the device of each layer
    a load placed (llama.cpp tells it only in its log); print them only when verbose."""
    message = text.decode("utf-8", "replace")
    _log_lines.append(message)
    placed = LAYER_DEVICE.search(message)
    if placed:
        _layer_devices[int(placed[1])] = placed[2]
    if _verbose or level == GGML_LOG_LEVEL_ERROR:
        print(message, end="", file=sys.stderr)


llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
llama_cpp.llama_backend_init()


class _LoadProgress:
    """llama.cpp's load progress callback, reporting to a Tracker (if any listens). An
    exception the listener raises cancels the load (the callback returns False, llama.cpp
    frees what it loaded) and is raised again once llama.cpp has returned; so does Ctrl-C,
    which during a load on the main thread only marks the load `interrupted` (an exception
    raised inside a C callback, this one or the log's, would be lost and the load go on)."""

    def __init__(self, tracker: Tracker | None):
        self.tracker = tracker
        self.error: BaseException | None = None
        self.interrupted = False
        self.callback = llama_cpp.llama_progress_callback(self._called)  # kept alive with self

    def _called(self, fraction: float, _user_data: ctypes.c_void_p) -> bool:
        try:
            if self.tracker is not None and not self.interrupted:
                self.tracker.update(fraction)
        except BaseException as exc:  # raising through C would go unseen and return "cancel"
            self.error = exc
        return self.error is None and not self.interrupted

    @contextmanager
    def catching_interrupts(self) -> Iterator[None]:
        """On the main thread, Ctrl-C marks the load interrupted instead of raising; after
        the block, an interrupt is raised as the handler before would have had it."""
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT) if main else None
        if not callable(previous):  # not the main thread, or Ctrl-C ignored or default
            yield
            return
        signal.signal(signal.SIGINT, lambda signum, frame: setattr(self, "interrupted", True))
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
        if self.interrupted:
            previous(signal.SIGINT, None)


def load_model(
    path: Path,
    *,
    vocab_only: bool,
    verbose: bool = False,
    gpu_layers: int = 0,
    repack: bool = True,
    place: Callable[[llama_cpp.llama_model_params], object] | None = None,
) -> tuple[llama_cpp.llama_model_p, dict[int, str]]:
    """llama.cpp's model of the GGUF file `path` (its vocabulary alone if `vocab_only`), with
    `gpu_layers` layers on the GPU (-1: all), and the device llama.cpp put each layer on
    (layer n_layer is the output). `place` points the load at other devices than this
    machine's (RPC workers' devices, engines/rpc/devices.py); what it returns is kept alive
    until the load returns.
    `repack` lets llama.cpp lay quantized weights out for its faster CPU kernels, whose
    results change with how many tokens a call holds (exact mode turns it off).
    A whole model's load reports its progress to the block's listener (progress.py), which
    can cancel it by raising. The caller frees the model (`llama_cpp.llama_model_free`)."""
    global _verbose
    check_gguf(path)
    _verbose = verbose
    _layer_devices.clear()
    _log_lines.clear()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = vocab_only
    params.n_gpu_layers = gpu_layers if gpu_layers >= 0 else MAX_LAYERS
    params.use_extra_bufts = repack
    held = place(params) if place is not None else None  # alive until the load returns
    tracker = None if vocab_only else Tracker("loading", short_name(path), 1.0)
    progress = _LoadProgress(tracker if tracker is not None and tracker.listener else None)
    params.progress_callback = progress.callback
    model = None
    try:
        with progress.catching_interrupts():
            model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    except BaseException:  # Ctrl-C, raised once llama.cpp has returned
        if model:
            llama_cpp.llama_model_free(model)
        raise
    del held
    if progress.error is not None:
        if model:  # llama.cpp finished before it read the answer
            llama_cpp.llama_model_free(model)
        raise progress.error
    if not model:
        problem = diagnose_gguf(path)
        if problem:
            raise ModelFileError(f"{path}: {problem}; download it again")
        said = "".join(_log_lines).strip().splitlines()[-3:]
        raise ModelLoadError(
            f"llama.cpp (llama-cpp-python {llama_cpp.__version__}) could not load {path}: "
            + (" / ".join(said) or "no reason given")
            + "; a newer llama-cpp-python may know this model's architecture"
        )
    if tracker is not None:
        tracker.finish()
    return model, dict(_layer_devices)


def vocabulary_facts(vocab: llama_cpp.llama_vocab_p) -> VocabularyFacts:
    """A loaded vocabulary's facts, as llama.cpp's draft compatibility check reads them."""
    size = llama_cpp.llama_vocab_n_tokens(vocab)
    return VocabularyFacts(
        vocab_type=VOCAB_TYPE_NAMES.get(llama_cpp.llama_vocab_type(vocab), "unknown"),
        size=size,
        bos_id=llama_cpp.llama_vocab_bos(vocab),
        eos_id=llama_cpp.llama_vocab_eos(vocab),
        add_bos=bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        add_eos=bool(llama_cpp.llama_vocab_get_add_eos(vocab)),
        token_texts=tuple(
            llama_cpp.llama_vocab_get_text(vocab, i).decode("utf-8", "replace") for i in range(size)
        ),
    )


def read_vocabulary(path: str | os.PathLike[str]) -> VocabularyFacts:
    """A GGUF file's vocabulary as llama.cpp sees it, loading no weights (0.4 s for Qwen)."""
    model, _ = load_model(Path(path), vocab_only=True)
    try:
        return vocabulary_facts(llama_cpp.llama_model_get_vocab(model))
    finally:
        llama_cpp.llama_model_free(model)


def token_piece(vocab: llama_cpp.llama_vocab_p, token: int, buffer: ctypes.Array) -> bytes:
    """The bytes `token` writes (control tokens none), read into `buffer` or, for a longer
    piece, into one of its size."""
    n = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
    if n < 0:
        buffer = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
    return buffer.raw[:n]


def vocabulary_pieces(vocab: llama_cpp.llama_vocab_p) -> list[bytes]:
    """Every token's bytes in id order, with nothing for an end of generation (it ends a reply
    rather than writing in it): what a draft of another vocabulary maps its tokens by
    (models/shared_tokens.py). About 1 s for Qwen's 151,936 tokens."""
    buffer = ctypes.create_string_buffer(256)
    return [
        b"" if llama_cpp.llama_vocab_is_eog(vocab, token) else token_piece(vocab, token, buffer)
        for token in range(llama_cpp.llama_vocab_n_tokens(vocab))
    ]


def read_token_pieces(path: str | os.PathLike[str]) -> list[bytes]:
    """A GGUF file's `vocabulary_pieces`, loading no weights."""
    model, _ = load_model(Path(path), vocab_only=True)
    try:
        return vocabulary_pieces(llama_cpp.llama_model_get_vocab(model))
    finally:
        llama_cpp.llama_model_free(model)


def end_of_generation_ids(path: str | os.PathLike[str]) -> list[int]:
    """The tokens llama.cpp ends a generation on: EOS, EOT and those it knows by their text
    (for Qwen also <|endoftext|> and the FIM separators), loading no weights."""
    model, _ = load_model(Path(path), vocab_only=True)
    try:
        vocab = llama_cpp.llama_model_get_vocab(model)
        size = llama_cpp.llama_vocab_n_tokens(vocab)
        return [i for i in range(size) if llama_cpp.llama_vocab_is_eog(vocab, i)]
    finally:
        llama_cpp.llama_model_free(model)
