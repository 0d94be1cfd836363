"""Whether a worker answers, in the RPC protocol this build speaks: asked before a model is
loaded on it, since llama.cpp's client ends the process on a worker that is not there or
speaks another protocol, without saying which worker it was.

The handshake is the one llama.cpp's client opens every connection with (ggml-rpc.cpp, protocol
7): command HELLO with the client's transport capabilities; the answer is the worker's
version and its own capabilities.

A worker serves one client at a time (ggml_backend_rpc_start_server accepts a connection, serves
it to its end, then accepts the next), and the protocol has no word for "busy": a second
client's connection waits in the listening socket's queue, unanswered, until the first client
leaves, and llama.cpp's client would wait on it without end or word. A worker that takes the
connection but does not answer the hello within HANDSHAKE_SECONDS is therefore named as busy.
"""

from __future__ import annotations

import re
import socket
import struct
from functools import cache
from importlib import metadata

from ...errors import RpcWorkerError
from ...settings import RpcWorker

HELLO = 14  # rpc_cmd RPC_CMD_HELLO, fixed across versions
CAPS_SIZE = 24  # RPC_CONN_CAPS_SIZE: the transport capabilities a protocol-7 hello carries
ANSWER_SIZE = 4 + CAPS_SIZE  # major, minor, patch, padding, capabilities
HANDSHAKE_SECONDS = 10.0  # a worker on a network far away answers well within this
START_WORKER = "start it with `specdec-jupyter rpc-worker` from this same llama-cpp-python"

Version = tuple[int, int, int]
PARTS = ("MAJOR", "MINOR", "PATCH")


@cache
def this_build_protocol() -> Version:
    """The RPC protocol this llama-cpp-python speaks, from the ggml-rpc.h it installed."""
    try:
        header = metadata.distribution("llama_cpp_python").locate_file("include/ggml-rpc.h")
        text = header.read_text()  # type: ignore[union-attr]
    except (metadata.PackageNotFoundError, OSError) as exc:
        raise RpcWorkerError(
            f"cannot tell which RPC protocol this llama-cpp-python speaks ({exc}); "
            "reinstall it built with -DGGML_RPC=on"
        ) from exc
    parts = [re.search(rf"RPC_PROTO_{part}_VERSION\s+(\d+)", text) for part in PARTS]
    if not all(parts):
        raise RpcWorkerError(f"{header} does not give the RPC protocol's version")
    major, minor, patch = (int(found[1]) for found in parts)  # type: ignore[index]
    return major, minor, patch


def speaks(theirs: Version, ours: Version) -> bool:
    """llama.cpp's own rule: the same major version, and no newer minor one than ours."""
    return theirs[0] == ours[0] and theirs[1] <= ours[1]


def check_worker(worker: RpcWorker, ours: Version | None = None) -> Version:
    """The protocol `worker` speaks; an RpcWorkerError naming it when it is not there, does
    not answer, or speaks a protocol this build cannot."""
    ours = ours or this_build_protocol()
    where = f"RPC worker {worker.endpoint}"
    try:
        sock = socket.create_connection((worker.host, worker.port), HANDSHAKE_SECONDS)
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or exc
        raise RpcWorkerError(f"{where} is not there ({reason}); {START_WORKER}") from None
    with sock:
        try:
            sock.sendall(struct.pack("<BQ", HELLO, CAPS_SIZE) + bytes(CAPS_SIZE))
            size = struct.unpack("<Q", _read(sock, 8))[0]
            answer = _read(sock, size) if size == ANSWER_SIZE else b""
        except TimeoutError:
            raise RpcWorkerError(
                f"{where} is busy: it took the connection but has not answered in "
                f"{HANDSHAKE_SECONDS:.0f} s, as a worker serving another client does (one at a "
                "time); free it (close the model another process holds on it) or start another "
                "worker, then load again"
            ) from None
        except OSError:  # closed or reset before its answer was complete
            raise RpcWorkerError(
                f"{where} closed the connection at the handshake: it speaks another RPC "
                f"protocol than this build's {_text(ours)} (another llama.cpp build); "
                f"{START_WORKER}"
            ) from None
    if not answer:
        raise RpcWorkerError(
            f"{where} answered a handshake of {size} bytes, not protocol {_text(ours)}'s "
            f"{ANSWER_SIZE}: it is another llama.cpp build; {START_WORKER}"
        )
    theirs: Version = (answer[0], answer[1], answer[2])
    if not speaks(theirs, ours):
        raise RpcWorkerError(
            f"{where} speaks RPC protocol {_text(theirs)}, this build {_text(ours)}: it is "
            f"another llama.cpp build; {START_WORKER}"
        )
    return theirs


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError
        data += chunk
    return data


def _text(version: Version) -> str:
    return ".".join(map(str, version))
