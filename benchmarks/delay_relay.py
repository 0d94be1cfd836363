"""A TCP relay that adds a fixed delay each way, standing in for a network between this
machine and an RPC worker (this kernel has no netem). Every chunk read is sent on `delay`
seconds after it arrived, so a round trip costs two delays while the bytes still stream: a
model's weights sent at load time take about as long as without the relay.

    with DelayRelay("127.0.0.1:50052", delay=0.002) as relay:
        sd.load(main, rpc=[relay.endpoint])
"""

from __future__ import annotations

import queue
import socket
import threading
import time

CHUNK = 1 << 16


class DelayRelay:
    """Listens on a free loopback port (`endpoint`) and relays every connection to `target`
    ("host:port"), each direction `delay` seconds late."""

    def __init__(self, target: str, delay: float):
        host, _, port = target.rpartition(":")
        self.target, self.delay = (host, int(port)), delay
        self._server = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self._server.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            worker = socket.create_connection(self.target)
            for sock in (client, worker):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, worker]
            self._pipe(client, worker)
            self._pipe(worker, client)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        """Read `source` on one thread, write each chunk to `sink` on another once it is
        `delay` old; an empty chunk passes the end of the stream on."""
        chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def read() -> None:
            while True:
                try:
                    data = source.recv(CHUNK)
                except OSError:
                    data = b""
                chunks.put((time.perf_counter() + self.delay, data))
                if not data:
                    return

        def write() -> None:
            while True:
                due, data = chunks.get()
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)  # the delay this relay exists for
                try:
                    if not data:
                        sink.shutdown(socket.SHUT_WR)
                        return
                    sink.sendall(data)
                except OSError:
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept
        self._server.close()
        for sock in self._sockets:
            sock.close()

    def __enter__(self) -> DelayRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
