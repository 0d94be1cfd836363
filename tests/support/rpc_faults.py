"""RPC faults for tests: a worker killed at a chosen engine call, and a stand-in for a
worker of another llama.cpp build (one that answers the handshake with another protocol
version, or closes the connection as builds before protocol 7 do on its hello), since a
second llama.cpp build is not at hand here. The workers themselves are the package's
(`specdec_jupyter.engines.rpc.loopback`)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from specdec_jupyter.engines.registry import EngineKind, ResolvedModel
from specdec_jupyter.engines.rpc.handshake import ANSWER_SIZE, CAPS_SIZE
from specdec_jupyter.engines.rpc.loopback import WorkerProcess
from specdec_jupyter.engines.tap import EngineTap
from specdec_jupyter.settings import LoadOptions


class Killer:
    """Kills an RPC worker in the middle of a run, at a known step: once armed
    (`arm(worker, call)`), `worker` is killed just before the `call`-th engine call from then
    on (1 is the next) reaches the engine, on the run's own thread. It watches the engines
    given to `tap`, or, with `watching`, every engine on workers that any door opens (the
    engines a manager loads anew included)."""

    def __init__(self) -> None:
        self._worker: WorkerProcess | None = None
        self._calls_left = 0

    def arm(self, worker: WorkerProcess, call: int) -> Killer:
        self._worker, self._calls_left = worker, call
        return self

    def tap(self, engine) -> EngineTap:
        return _Killing(engine, self)

    def watching(self, monkeypatch: pytest.MonkeyPatch) -> Killer:
        """Every engine opened on workers from now until the test ends, tapped."""
        open_engine = EngineKind.open

        def open_watched(kind: EngineKind, model: ResolvedModel, options: LoadOptions):
            engine = open_engine(kind, model, options)
            return self.tap(engine) if options.rpc else engine

        monkeypatch.setattr(EngineKind, "open", open_watched)
        return self

    def count(self) -> None:
        """One more call is about to reach an engine: the armed one kills its worker."""
        if self._worker is None:
            return
        self._calls_left -= 1
        if self._calls_left == 0:
            self._worker.kill()
            self._worker = None


class _Killing(EngineTap):
    def __init__(self, engine, killer: Killer):
        super().__init__(engine)
        self.killer = killer

    def before(self, tokens, n_logits) -> None:
        self.killer.count()


@contextmanager
def other_build_worker(version: tuple[int, int, int] | None) -> Iterator[str]:
    """A listener that answers the hello with `version` (None: closes the connection after
    reading the hello, as a worker before protocol 7 does on a hello of this size)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            with client:
                client.recv(1 + 8 + CAPS_SIZE, socket.MSG_WAITALL)
                if version is not None:
                    client.sendall(struct.pack("<Q", ANSWER_SIZE) + bytes([*version, 0]))
                    client.sendall(bytes(CAPS_SIZE))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept
        server.close()
        thread.join()
