"""RPC workers on this machine's loopback, each a `specdec-jupyter rpc-worker` process: to
try a model on workers without a second machine, and for the benchmark and the tests.

    with workers(2) as started:
        session = sd.load(main, draft=draft, rpc=endpoints(started))

A worker is started and read until it announces that it listens, so it is ready when given.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .worker import LISTENING


def free_port() -> int:
    """A loopback port no one listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerProcess:
    """A worker on `port` (or a free one) of `host`, reached at `endpoint` on loopback;
    its output, kept in `lines`, is drained for as long as it runs."""

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
            if LISTENING in line:  # llama.cpp's own output, from its thread, may begin the line
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
    """`count` workers of `threads` threads each, ended when the block ends."""
    started: list[WorkerProcess] = []
    try:
        for _ in range(count):
            started.append(WorkerProcess(threads=threads))
        yield started
    finally:
        for worker in started:
            worker.kill()


def endpoints(started: Sequence[WorkerProcess]) -> list[str]:
    """The workers as `rpc=` takes them."""
    return [worker.endpoint for worker in started]
