"""The process a model spread over RPC workers runs in (started by hosted.py): it loads the
model, then answers the engine's calls that come over its connection until told to close or
the connection ends. If a worker stops answering, llama.cpp ends this process, and the
notebook or server that started it lives on.

    python -m specdec_jupyter.engines.rpc.host FD     # FD: this end of a socket pair

Every message is a tuple. In: ("open", path, keyword arguments, report progress?), then
(method, arguments, keyword arguments) per call, and ("close",). Out: ("progress", Progress)
while loading, then ("ok", value) or ("error", exception, the cache's tokens) per call.
"""

from __future__ import annotations

import pickle
import sys
from multiprocessing.connection import Connection

from ...errors import SpecDecError
from ...progress import reporting_to
from ..llamacpp import LlamaCppEngine

FACTS = ("name", "path", "n_vocab", "n_ctx", "exact", "backend")


def serve(connection: Connection) -> None:
    _, path, options, report = connection.recv()
    listener = (lambda event: connection.send(("progress", event))) if report else None
    try:
        with reporting_to(listener):
            engine = LlamaCppEngine(path, **options)
    except BaseException as exc:
        connection.send(("error", portable(exc), []))
        return
    connection.send(("ok", {fact: getattr(engine, fact) for fact in FACTS}))
    try:
        while (call := connection.recv())[0] != "close":
            method, arguments, keywords = call
            try:
                connection.send(("ok", getattr(engine, method)(*arguments, **keywords)))
            except Exception as exc:
                connection.send(("error", portable(exc), engine.tokens))
    except EOFError:  # the engine's owner has gone
        engine.close()
        return
    engine.close()
    connection.send(("ok", None))


def portable(error: BaseException) -> BaseException:
    """`error` if it crosses to the other process as it is, else its message as ours."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return SpecDecError(f"{type(error).__name__}: {error}")
    return error


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    serve(Connection(int(argv[0])))


if __name__ == "__main__":
    main()
