"""RPC faults for tests: a tap that kills a worker at a chosen call, and a stand-in for a
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

from specdec_jupyter.engines.rpc.handshake import ANSWER_SIZE, CAPS_SIZE
from specdec_jupyter.engines.rpc.loopback import WorkerProcess
from specdec_jupyter.engines.tap import EngineTap


class KillAt(EngineTap):
    """An engine whose `worker` is killed just before its `call`-th evaluation (1 is the
    first) reaches it."""

    def __init__(self, engine, worker: WorkerProcess, call: int):
        super().__init__(engine)
        self.worker, self.call, self.calls = worker, call, 0

    def before(self, tokens, n_logits) -> None:
        self.calls += 1
        if self.calls == self.call:
            self.worker.kill()


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
