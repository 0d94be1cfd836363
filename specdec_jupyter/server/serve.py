"""Running the app with uvicorn: `serve` in the foreground (the socket bound first, then one
banner line, then a line per request; Ctrl-C stops it cleanly), `serving_in_background` on a
thread."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from ..errors import SpecDecError
from ..sessions.manager import EngineManager
from .access import ANY, Access, is_loopback
from .app import SpecDecServer, create_app
from .request_log import print_requests
from .served import ServedModels

START_DEADLINE = 30.0  # seconds a busy machine may take to start a server


def serve(
    host: str = "127.0.0.1",
    port: int = 1234,
    *,
    api_key: str | None = None,
    folders: Sequence[str | os.PathLike[str]] = (),
    manager: EngineManager | None = None,
    allow_hosts: Collection[str] = (),
    allow_origins: Collection[str] = (),
) -> None:
    """Serve until Ctrl-C (LM Studio's port by default; loopback unless told otherwise).

    `allow_hosts`: Host names answered besides loopback ones; `allow_origins`: the web pages
    (origins, `*` for any) allowed to call it from a browser (access.py)."""
    import uvicorn

    sock = listening_socket(host, port)  # a port in use is an error before any banner
    try:
        models = ServedModels(folders)
        access = Access.for_bind(host, allow_hosts, allow_origins)
        server = SpecDecServer(manager or EngineManager(), models, api_key=api_key, access=access)
        count = sum(1 for _ in models)
        bound = sock.getsockname()[1]
        print(
            f"specdec-jupyter serving {count} models on http://{_url_host(host)}:{bound} "
            f"(OpenAI: /v1, LM Studio: /api/v0{', API key required' if api_key else ''}); "
            "Ctrl-C stops",
            flush=True,
        )
        for warning in exposure_warnings(host, api_key, allow_origins):
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        print_requests()
        config = uvicorn.Config(create_app(server), log_level="warning")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def exposure_warnings(host: str, api_key: str | None, origins: Collection[str]) -> list[str]:
    """What a user opening the server wider than this machine's own programs should know."""
    warnings = []
    if not is_loopback(host) and api_key is None:
        warnings.append(
            f"{host} is reachable from other machines and no --api-key is set: anyone who "
            "can reach it can run the models; add --api-key KEY"
        )
    if ANY in origins and api_key is None:
        warnings.append(
            "--cors lets every web page you open call this server; add --api-key KEY, or "
            "allow only the pages you use with --allow-origin"
        )
    return warnings


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` (0: a free port), or one line saying why not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError, OverflowError) as exc:
        raise SpecDecError(f"cannot listen on {host}:{port}: {exc}; check --host") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen()  # a client that connects once the banner is out waits, is not refused
    except OSError as exc:
        sock.close()
        raise SpecDecError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port "
            "(or stop what is using it)"
        ) from None
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@contextmanager
def serving_in_background(server: SpecDecServer, host: str = "127.0.0.1") -> Iterator[str]:
    """Run `server` on a free port of `host` on a thread (for a notebook, a benchmark or a
    test); yields its base URL, and stops it on exit."""
    import uvicorn

    sock = listening_socket(host, 0)
    config = uvicorn.Config(create_app(server), log_level="warning", lifespan="off")
    runner = uvicorn.Server(config)
    thread = threading.Thread(target=runner.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_DEADLINE
    while not runner.started:  # uvicorn offers no event for this: polled, with a deadline
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the server did not start within {START_DEADLINE:.0f} s")
        time.sleep(0.01)
    try:
        yield f"http://{_url_host(host)}:{sock.getsockname()[1]}"
    finally:
        runner.should_exit = True
        thread.join(START_DEADLINE)
        sock.close()
