"""An RPC worker: this machine's GPUs, or else its CPU, offered to one llama.cpp client at a
time, from this same build (`specdec-jupyter rpc-worker`), as llama.cpp's `rpc-server` does.

llama.cpp serves in `ggml_backend_rpc_start_server`, which returns only when it cannot listen
and says nothing once it listens; the worker therefore greets itself with the handshake a
client opens with (handshake.py) and announces itself once that is answered, so whoever
started it can wait for that line.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ...errors import RpcWorkerError
from ...settings import RpcWorker
from .. import ggml_devices
from .handshake import check_worker, this_build_protocol

LISTENING = "specdec-jupyter rpc-worker listening on"  # how its announcement begins
UNPROTECTED = (
    "note: RPC has no authentication: whoever reaches {endpoint} can use this machine's "
    "memory and devices; keep it on a trusted network"
)


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is this machine's loopback."""
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(entry[4][0]).is_loopback for entry in found)


def serve(
    worker: RpcWorker,
    *,
    threads: int | None = None,
    cache: Path | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Serve until the process ends; `say` gets the warning for a worker off loopback and
    the line announcing it listens. Raises RpcWorkerError if it cannot listen."""
    _require_free(worker)
    devices = ggml_devices.gpus() or [ggml_devices.cpu()]
    threads = threads or os.cpu_count() or 1
    if not is_loopback(worker.host):
        say(UNPROTECTED.format(endpoint=worker.endpoint))
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    what = ", ".join(
        f"{ggml_devices.device_name(d)} ({ggml_devices.device_description(d)})" for d in devices
    )
    protocol = ".".join(map(str, this_build_protocol()))
    announcement = (
        f"{LISTENING} {worker.endpoint}: {what}, {threads} threads, "
        f"RPC protocol {protocol}{f', cache {cache}' if cache else ''}; Ctrl-C stops it"
    )
    threading.Thread(target=_announce, args=(worker, announcement, say), daemon=True).start()
    start = ggml_devices.rpc_library().ggml_backend_rpc_start_server
    start(
        worker.endpoint.encode(),
        str(cache).encode() if cache is not None else None,
        threads,
        len(devices),
        ggml_devices.device_list(devices),
    )
    raise RpcWorkerError(
        f"cannot listen on {worker.endpoint}: is the port taken, or the address not this machine's?"
    )


def _require_free(worker: RpcWorker) -> None:
    """Refuse an address llama.cpp cannot listen on, before a worker already there could be
    taken for this one: llama.cpp listens on an IPv4 address, and on a port of its own."""
    try:
        ipaddress.IPv4Address(worker.host)
    except ValueError:
        raise RpcWorkerError(
            f"a worker listens on an IPv4 address (127.0.0.1, 0.0.0.0, this machine's on the "
            f"network), got {worker.host!r}"
        ) from None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as llama.cpp binds
        try:
            probe.bind((worker.host, worker.port))
        except OSError as exc:
            raise RpcWorkerError(
                f"cannot listen on {worker.endpoint}: {exc.strerror or exc}"
            ) from None


def _announce(worker: RpcWorker, announcement: str, say: Callable[[str], None]) -> None:
    """Say `announcement` once the worker answers a handshake (it listens from then on).
    No deadline: on a loaded machine llama.cpp may take long to listen, and if it cannot,
    `serve` raises and the process ends with this thread."""
    host = "127.0.0.1" if worker.host in ("0.0.0.0", "") else worker.host
    own = RpcWorker(host, worker.port)
    while True:
        try:
            check_worker(own)
        except RpcWorkerError:
            time.sleep(0.02)  # llama.cpp is not listening yet
            continue
        say(announcement)
        return
