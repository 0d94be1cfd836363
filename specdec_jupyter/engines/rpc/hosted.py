"""A llama.cpp engine on RPC workers, run in a process of its own (host.py) and seen here as
an engine like any other.

llama.cpp's RPC client ends its process when a worker stops answering (a failed send is a
GGML_ABORT), with no error to catch; in a notebook's kernel or a server that would end
everything. Here only the host process ends: the call in flight raises EngineLostError naming
the worker that is gone, the text generated so far stands, and the next load starts a new
process. The host asks each worker for the handshake (handshake.py) just before it loads,
so one that is not there, busy, or of another build is named before anything loads.

A call costs one round trip between the processes (tens of microseconds) and the rows of
logits asked for, copied once; text calls (a token's bytes, whether it ends a generation)
are remembered here, as they never change.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import EngineLostError, RpcWorkerError
from ...models.vocabulary import VocabularyFacts
from ...progress import ProgressListener, current_listener
from ...settings import RpcWorker
from ..base import ChatMessage
from .handshake import check_worker

LOG_LINES = 40  # the host's last lines of output, to say why it ended
CLOSE_SECONDS = 30.0  # how long a closing host may take to free its model
SOURCE_PLACE = re.compile(r"^\S+:\d+: ")


class HostedEngine:
    """The model at `path` loaded by llama.cpp over `workers`, with `options` as
    LlamaCppEngine takes them, in a process of its own. `verbose` echoes its log. It holds
    one sequence: requests on it take turns."""

    n_seq = 1

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        workers: Sequence[RpcWorker],
        verbose: bool = False,
        **options: Any,
    ):
        self.workers = tuple(workers)
        self.name = Path(path).stem
        self._tokens: list[int] = []
        self._lock = threading.Lock()
        self._lost: EngineLostError | None = None
        self._bytes: dict[int, bytes] = {}
        self._ends: dict[int, bool] = {}
        self._pieces: list[bytes] | None = None
        self._vocabulary: VocabularyFacts | None = None
        ours, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "specdec_jupyter.engines.rpc.host", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={**os.environ, "GGML_NO_BACKTRACE": "1"},  # its last words, not gdb's
            )
        self._connection = Connection(ours.detach())
        self._log: deque[str] = deque(maxlen=LOG_LINES)
        self._reader = threading.Thread(target=self._read_log, args=(verbose,), daemon=True)
        self._reader.start()
        listener = current_listener()
        opening = {**options, "rpc": self.workers, "verbose": verbose}
        try:
            facts = self._call(("open", str(path), opening, listener is not None), listener)
        except BaseException:
            self.close()
            raise
        self.path = Path(facts["path"])
        self.n_vocab: int = facts["n_vocab"]
        self.n_ctx: int = facts["n_ctx"]
        self.exact: bool = facts["exact"]
        self._backend: str = facts["backend"]

    # -- the other process ----------------------------------------------------------

    def _call(self, message: tuple, listener: ProgressListener | None = None) -> Any:
        """Send `message` and return the answer; the host's own errors are raised as they
        are, and a host that has ended makes the engine lost."""
        with self._lock:
            if self._lost is not None:
                raise self._lost
            try:
                self._connection.send(message)
                while (answer := self._connection.recv())[0] == "progress":
                    if listener is not None:
                        listener(answer[1])
            except (EOFError, OSError):
                raise self._lose() from None
            except BaseException:  # interrupted mid-call: what the host holds is unknown now
                self._lose("it was interrupted during a call")
                raise
            if answer[0] == "error":
                self._tokens = answer[2]
                raise answer[1]
            return answer[1]

    def _run(self, method: str, *arguments: Any, **keywords: Any) -> Any:
        return self._call((method, arguments, keywords))

    def _lose(self, why: str = "") -> EngineLostError:
        """The engine is gone: end the host if it still runs, and say why, naming the worker
        that no longer answers."""
        self._process.kill()
        self._process.wait()
        self._reader.join()
        said = next((line for line in reversed(self._log) if line.strip()), "").strip()
        said = SOURCE_PLACE.sub("", said)  # GGML_ABORT's file:line: before its message
        gone = [w.endpoint for w in self.workers if not _answers(w)]
        if why:
            cause = why
        elif gone:
            cause = f"RPC worker {', '.join(gone)} stopped answering"
        else:
            cause = f"its process ended (exit status {self._process.returncode})"
        self._lost = EngineLostError(
            f"{self.name} is lost: {cause}"
            + (f" (llama.cpp: {said})" if said else "")
            + "; start the worker again if it is gone (`specdec-jupyter rpc-worker` on its "
            "machine), then load the model again (a server or a chat does on its next request)"
        )
        return self._lost

    def _read_log(self, verbose: bool) -> None:
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.decode("utf-8", "replace")
            self._log.append(line)
            if verbose:
                sys.stderr.write(line)

    # -- the engine -----------------------------------------------------------------

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def tokens(self) -> list[int]:
        return self._tokens

    @property
    def lost(self) -> bool:
        return self._lost is not None

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return self._run("tokenize", text, special=special)

    def chat_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self._run("chat_tokens", list(messages))

    def token_bytes(self, token: int) -> bytes:
        if token not in self._bytes:
            self._bytes[token] = self._run("token_bytes", token)
        return self._bytes[token]

    def token_pieces(self) -> list[bytes]:
        if self._pieces is None:
            self._pieces = self._run("token_pieces")
        return self._pieces

    def is_end_of_generation(self, token: int) -> bool:
        if token not in self._ends:
            self._ends[token] = self._run("is_end_of_generation", token)
        return self._ends[token]

    def read_prompt(self, prompt: Sequence[int]) -> np.ndarray:
        row = self._run("read_prompt", list(prompt))
        self._tokens = list(prompt)
        return row

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        rows = self._run("evaluate", list(tokens), n_logits)
        self._tokens = [*self._tokens, *tokens]
        return rows

    def sequence(self, index: int) -> HostedEngine:
        return (self,)[index]

    def rollback(self, n_keep: int) -> None:
        self._run("rollback", n_keep)
        del self._tokens[n_keep:]

    def vocabulary(self) -> VocabularyFacts:
        if self._vocabulary is None:
            self._vocabulary = self._run("vocabulary")
        return self._vocabulary

    def close(self) -> None:
        """Free the model on the workers and end the host."""
        if self._process.poll() is None and self._lost is None:
            try:
                with self._lock:
                    self._connection.send(("close",))
                    self._connection.recv()
            except (EOFError, OSError):
                pass
        self._connection.close()
        try:
            self._process.wait(CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __del__(self) -> None:
        if getattr(self, "_connection", None) is not None and not self._connection.closed:
            self.close()

    def __repr__(self) -> str:
        workers = ", ".join(w.endpoint for w in self.workers)
        return f"HostedEngine({str(self.path)!r}, workers=[{workers}], exact={self.exact})"


def _answers(worker: RpcWorker) -> bool:
    try:
        check_worker(worker)
    except RpcWorkerError:
        return False
    return True
