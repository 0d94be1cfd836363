"""RPC workers for tests: real `specdec-jupyter rpc-worker` processes on loopback, a tap that
kills one at a chosen call, and a stand-in for a worker of another llama.cpp build (one that
answers the handshake with another protocol version, or closes the connection as builds
before protocol 7 do on its hello), since a second llama.cpp build is not at hand here."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from specdec_jupyter.engines.rpc.handshake import ANSWER_SIZE, CAPS_SIZE
from specdec_jupyter.engines.tap import EngineTap

READY = "specdec-jupyter rpc-worker listening on"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerProcess:
    """A worker on loopback (`port`, or a free one), started and read until it announces
    that it listens; its later output is drained and kept in `lines`."""

    def __init__(self, port: int | None = None, *, threads: int = 1, host: str = "127.0.0.1"):
        self.port = port or free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "specdec_jupyter.cli", "rpc-worker"]
        command += ["--host", host, "--port", str(self.port), "--threads", str(threads)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert self.process.stdout is not None
        self.lines: list[str] = []
        for line in self.process.stdout:
            self.lines.append(line)
            if READY in line:  # llama.cpp's own output, from its thread, may begin the line
                break
        else:
            raise RuntimeError(f"the worker ended before it listened: {''.join(self.lines)}")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def kill(self) -> None:
        """End it now, as a machine that goes away does (its connections reset)."""
        self.process.kill()
        self.process.wait()


@contextmanager
def workers(count: int = 2, threads: int = 1) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    try:
        for _ in range(count):
            started.append(WorkerProcess(threads=threads))
        yield started
    finally:
        for worker in started:
            worker.kill()


def endpoints(started: Sequence[WorkerProcess]) -> list[str]:
    return [worker.endpoint for worker in started]


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
