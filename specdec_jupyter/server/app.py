"""The ASGI app: LM Studio's `/api/v0` and OpenAI's `/v1` endpoints on one EngineManager.

Runs go through `EngineManager.start(..., wait=True)` on worker threads, so a model is loaded
once however many requests ask. A model serves `parallel` requests at once (LoadOptions, the
`--parallel` of `serve`), their rounds batched into one call; more wait their turn, first come
first served, and past `max_waiting` waiting on a model a request gets 429 with Retry-After.
A client that disconnects (streaming or not) cancels its run, which gives up its sequence at
the next round. `/api/v0/models` says how many of each model's sequences are in use. Who may
call is access.py's (Host names, browser origins); bodies are JSON sent as
`application/json`. Every error, unknown routes included, is OpenAI's JSON error object with
its status, never a traceback; it names models by their ids, and the server's log keeps the
paths.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..decoding.events import TokenEvent
from ..engines.registry import ResolvedModel
from ..errors import (
    ContextOverflowError,
    EngineBusyError,
    EngineLostError,
    MemoryBudgetError,
    ModelFileError,
    ModelLoadError,
    RpcWorkerError,
    SpecDecError,
    UnknownModelError,
)
from ..models.drafts.guidance import guidance_for
from ..sessions.generation import Generation
from ..sessions.manager import EngineManager
from ..sessions.pair import DEFAULT, Pair, Remembered
from ..settings import RunSettings
from . import shapes
from .access import Access, AccessControl
from .request_log import LOG, request_line
from .requests import CompletionRequest, parse_request
from .served import ServedModel, ServedModels

MAX_BODY_BYTES = 1 << 20
RETRY_AFTER_SECONDS = 5
JSON_MEDIA_TYPE = "application/json"
_END = object()  # the run has ended (its stats or error are on the Generation)
ABSOLUTE_PATH = re.compile(r"(?<![\w/.:])/[^\s'\"`:;,()]+")
log = logging.getLogger("specdec_jupyter.server")

Handler = Callable[[Request], Awaitable[Response]]


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def status_of(exc: BaseException) -> int:
    """The HTTP status of an error a run or a request raised."""
    if isinstance(exc, HttpError):
        return exc.status
    if isinstance(exc, UnknownModelError):
        return 404
    if isinstance(exc, ContextOverflowError):
        return 413
    if isinstance(exc, EngineBusyError):
        return 429
    if isinstance(
        exc, ModelFileError | ModelLoadError | MemoryBudgetError | RpcWorkerError | EngineLostError
    ):
        return 503
    if isinstance(exc, SpecDecError | ValueError):
        return 400
    return 500


def error_response(exc: BaseException, redact: Callable[[str], str] = str) -> JSONResponse:
    """OpenAI's error object for `exc`, its message passed through `redact` (paths to ids)."""
    status = status_of(exc)
    message = str(exc) if status != 500 else f"internal error: {type(exc).__name__}"
    reasons = getattr(exc, "reasons", None)
    if reasons:
        message = f"{message} ({'; '.join(reasons)})" if reasons[0] not in message else message
    if status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc)  # the paths stay in the server's log
    headers = exc.headers if isinstance(exc, HttpError) else {}
    if status == 429:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **headers}
    body = shapes.error(redact(message), status)
    return JSONResponse(body, status_code=status, headers=headers)


class SpecDecServer:
    """The endpoints' state: the manager, the served models, the key, who may call
    (`access`: loopback Host names and no browser origins unless told), the bounded queue."""

    def __init__(
        self,
        manager: EngineManager,
        models: ServedModels,
        *,
        api_key: str | None = None,
        access: Access | None = None,
        max_waiting: int = 16,
        max_body_bytes: int = MAX_BODY_BYTES,
    ):
        self.manager, self.models, self.api_key = manager, models, api_key
        self.access = access or Access()
        self.max_waiting, self.max_body_bytes = max_waiting, max_body_bytes
        self._in_flight: Counter[ResolvedModel] = Counter()  # runs per main model
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------

    def guarded(self, handler: Handler) -> Handler:
        """The key checked first; any error turned into OpenAI's error object."""

        async def endpoint(request: Request) -> Response:
            try:
                self._authorize(request)
                return await handler(request)
            except Exception as exc:
                response = self.error_response(exc)
                message = json.loads(response.body)["error"]["message"]
                model = getattr(request.state, "model", None)
                LOG.info(
                    request_line(_what(request), model, None, None, response.status_code, message)
                )
                return response

        return endpoint

    def error_response(self, exc: BaseException) -> JSONResponse:
        return error_response(exc, self.redact)

    def redact(self, message: str) -> str:
        """`message` as a client may see it: a served model's path becomes its id, any other
        path on this machine its last part (the server's log keeps them whole)."""
        for served in sorted(self.models, key=lambda s: -len(s.model.key)):
            if os.path.isabs(served.model.key):
                message = message.replace(served.model.key, served.id)

        def short(match: re.Match[str]) -> str:
            path = match[0]
            on_disk = os.path.exists(path) or os.path.isdir(os.path.dirname(path))
            return os.path.basename(path.rstrip("/")) or path if on_disk else path

        return ABSOLUTE_PATH.sub(short, message)

    def _authorize(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
            raise HttpError(401, "missing or wrong API key; send 'Authorization: Bearer KEY'")

    async def _body(self, request: Request) -> object:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != JSON_MEDIA_TYPE:
            raise HttpError(
                415,
                f"the request body must be JSON sent with 'Content-Type: {JSON_MEDIA_TYPE}'"
                + (f", not {media_type!r}" if media_type else ""),
            )
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise HttpError(413, f"the request body is over {self.max_body_bytes} bytes")
        data = bytearray()
        async for part in request.stream():
            data += part
            if len(data) > self.max_body_bytes:
                raise HttpError(413, f"the request body is over {self.max_body_bytes} bytes")
        try:
            return json.loads(data)
        except ValueError:
            raise HttpError(400, "the request body is not valid JSON") from None
        except RecursionError:
            raise HttpError(400, "the request body nests too deeply to be a request") from None

    # -- models ------------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        if request.url.path.startswith("/v1"):
            data = [_openai_model(s) for s in self.models]
        else:
            activity = self.manager.activity()
            data = [self._describe(s, activity) for s in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def one_model(self, request: Request) -> Response:
        served = self.models.get(request.path_params["model_id"])
        if request.url.path.startswith("/v1"):
            return JSONResponse(_openai_model(served))
        return JSONResponse(self._describe(served, self.manager.activity()))

    def _describe(
        self, served: ServedModel, activity: dict[ResolvedModel, tuple[int, int, int]]
    ) -> dict[str, Any]:
        """LM Studio's entry, and how many of its parallel sequences are in use."""
        loaded = served.model in activity
        in_use, sequences, waiting = activity.get(served.model, (0, 0, 0))
        return {
            **served.describe(loaded),
            "parallel": sequences if loaded else self.manager.parallel(served.model),
            "sequences_in_use": in_use,
            "requests_waiting": waiting,
        }

    async def drafts(self, request: Request) -> Response:
        """Our extension: which served models can draft for a model, each with its notes
        (warnings, or why not) and its group (same vocabulary, another vocabulary, unusable),
        and its default draft; what a remote chat's selector shows."""
        served = self.models.get(request.path_params["model_id"])
        return JSONResponse(await run_in_threadpool(self._drafts_of, served))

    def _drafts_of(self, main: ServedModel) -> dict[str, Any]:
        same, text, incompatible = [], [], []
        for other in self.models:
            if other.model.kind != main.model.kind or other.model == main.model:
                continue
            verdict = self.manager.check_draft(main.model, other.model)
            notes = verdict.warnings if verdict.compatible else verdict.reasons
            entry = {"id": other.id, "notes": list(notes), "group": verdict.answer}
            group = text if verdict.text_level else same if verdict.compatible else incompatible
            group.append(entry)
        compatible = [*same, *text]
        key = self.manager.default_draft(main.model)  # what a request without a draft uses
        default = None if key is None else self.models.id_of_key(key)
        if default not in {entry["id"] for entry in compatible}:
            default = None
        guidance = "" if compatible else guidance_for(main.id, main.model.path, len(incompatible))
        return {
            "compatible": compatible,
            "incompatible": incompatible,
            "default": default,
            "guidance": guidance,
        }

    # -- completions ---------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        return await self._complete(request, chat=True)

    async def completions(self, request: Request) -> Response:
        return await self._complete(request, chat=False)

    async def _complete(self, http: Request, *, chat: bool) -> Response:
        request = parse_request(await self._body(http), chat=chat)
        http.state.model = request.model  # for the request's log line, should it fail
        served = self.models.get(request.model)
        draft = request.draft_model
        if isinstance(draft, str):
            draft = self.models.get(draft).model
        run, events = await self._start(request, Pair(served.model, draft))
        response_id = shapes.new_id(request.chat)
        common = {
            "response_id": response_id,
            "served": served,
            "chat": request.chat,
            "draft_id": self._draft_id(served, draft, request.settings),
        }
        line = (_what(http), request.model, common["draft_id"])
        if not request.stream:
            watcher = asyncio.ensure_future(_cancel_on_disconnect(http, run))
            try:
                collected = await _drain(events)
            finally:
                watcher.cancel()
            _raise_error(run)
            assert run.stats is not None
            LOG.info(request_line(*line, run.stats, 200))
            return JSONResponse(shapes.completion(events=collected, stats=run.stats, **common))
        first = await events.get()  # an error before the first token is a status, not a chunk
        if first is _END:
            _raise_error(run)
        chunks = self._chunks(run, events, first, request.include_usage, common, line)
        return StreamingResponse(chunks, media_type="text/event-stream")

    def _draft_id(
        self, served: ServedModel, draft: ResolvedModel | Remembered | None, settings: RunSettings
    ) -> str | None:
        """The id of the draft model the run uses, as the client would name it."""
        if (settings.draft_mode or "model") != "model" or not settings.use_draft:
            return None
        if draft is DEFAULT:
            key = self.manager.default_draft(served.model)
            return None if key is None else self.models.id_of_key(key)
        return None if draft is None else self.models.id_of_key(draft.key)

    async def _start(
        self, request: CompletionRequest, pair: Pair
    ) -> tuple[Generation, asyncio.Queue]:
        """The run on a worker thread, and the queue its events (then `_END`) arrive on; past
        the model's parallel sequences and `max_waiting` more, a 429."""
        model = pair.main
        assert isinstance(model, ResolvedModel)
        room = self.manager.parallel(model) + self.max_waiting
        with self._lock:
            if self._in_flight[model] >= room:
                raise HttpError(
                    429,
                    f"{model.name} is serving {self._in_flight[model]} requests, its parallel "
                    "sequences and its queue; retry later",
                )
            self._in_flight[model] += 1
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def on_event(event: TokenEvent) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def on_end(run: Generation) -> None:
            with self._lock:
                self._in_flight[model] -= 1
            loop.call_soon_threadsafe(events.put_nowait, _END)

        try:
            run = await run_in_threadpool(
                self.manager.start,
                request.prompt,
                pair,
                request.settings,
                wait=True,
                on_event=on_event,
                on_end=on_end,
            )

        except BaseException:
            with self._lock:
                self._in_flight[model] -= 1
            raise
        return run, events

    async def _chunks(
        self,
        run: Generation,
        events: asyncio.Queue,
        first: object,
        include_usage: bool,
        common: dict[str, Any],
        line: tuple[str, str, str | None],
    ) -> AsyncIterator[str]:
        """SSE: a chunk per batch of tokens that arrived together, the stats last, [DONE];
        then the request's log line (`line`: its method and path, model and draft)."""
        ending: str | None = "client disconnected; run cancelled"
        try:
            ended = first is _END
            batch, is_first = ([] if ended else [first]), True
            while not ended:
                while not events.empty():
                    item = events.get_nowait()
                    if item is _END:
                        ended = True
                        break
                    batch.append(item)
                if batch:
                    yield _sse(shapes.chunk(events=batch, first=is_first, **common))
                    batch, is_first = [], False
                if not ended:
                    item = await events.get()
                    if item is _END:
                        ended = True
                    else:
                        batch.append(item)
            if batch:
                yield _sse(shapes.chunk(events=batch, first=is_first, **common))
            if run.error is not None:
                ending = f"error mid-stream: {self.redact(str(run.error))}"
                yield _sse(json.loads(self.error_response(run.error).body))
            else:
                ending = None
                assert run.stats is not None
                yield _sse(
                    shapes.chunk(
                        events=[],
                        stats=run.stats,
                        include_usage=include_usage,
                        **common,
                    )
                )
            yield "data: [DONE]\n\n"
        finally:
            run.cancel()  # a client gone: stop after the current round (no-op when ended)
            LOG.info(request_line(*line, None if ending else run.stats, 200, ending))


def _what(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def _openai_model(served: ServedModel) -> dict[str, Any]:
    return {"id": served.id, "object": "model", "created": 0, "owned_by": "specdec_jupyter"}


async def _cancel_on_disconnect(request: Request, run: Generation) -> None:
    """Cancel `run` when its client goes away (after its body was read, the next message
    the server gets is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
    run.cancel()


def _sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _drain(events: asyncio.Queue) -> list[TokenEvent]:
    collected = []
    while (item := await events.get()) is not _END:
        collected.append(item)
    return collected


def _raise_error(run: Generation) -> None:
    if run.error is not None:
        raise run.error


def create_app(server: SpecDecServer) -> Starlette:
    """The ASGI app for `server`'s endpoints (LM Studio's paths and OpenAI's)."""
    g = server.guarded
    routes = [Route("/health", g(_health))]
    for prefix in ("/api/v0", "/v1"):
        routes += [
            Route(f"{prefix}/models", g(server.list_models)),
            Route(f"{prefix}/chat/completions", g(server.chat_completions), methods=["POST"]),
            Route(f"{prefix}/completions", g(server.completions), methods=["POST"]),
        ]
    routes.append(Route("/api/v0/drafts/{model_id:path}", g(server.drafts)))
    for prefix in ("/api/v0", "/v1"):
        routes.append(Route(f"{prefix}/models/{{model_id:path}}", g(server.one_model)))

    async def no_route(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        words = {404: "no such endpoint", 405: "method not allowed here"}.get(status, str(exc))
        message = (
            f"{request.method} {request.url.path}: {words}; see /v1/models, /v1/chat/completions"
        )
        return JSONResponse(shapes.error(message, status), status_code=status)

    app = Starlette(routes=routes, exception_handlers={HTTPException: no_route})
    return AccessControl(app, server.access)


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})
