"""A real specdec server on a free loopback port, run by uvicorn on a thread for a test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from specdec_jupyter.server.app import SpecDecServer, create_app

READY_DEADLINE = 30.0  # seconds a busy machine may take to start the server


@contextmanager
def running(server: SpecDecServer) -> Iterator[str]:
    """The server's base URL while it runs; it is stopped and joined on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(server), log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + READY_DEADLINE
    while not uv.started:  # polled against a deadline: startup has no event to wait on
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(READY_DEADLINE)
        sock.close()
