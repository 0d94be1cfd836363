"""The ASGI app: LM Studio's `/api/v0` and OpenAI's `/v1` endpoints on one EngineManager.

Runs go through `EngineManager.start(..., wait=True)` on worker threads, so a model is loaded
once however many requests ask, and requests for a busy model wait their turn; past
`max_waiting` runs in flight a request gets 429 with Retry-After. A streaming client that
disconnects cancels its run after the current round. Every error is OpenAI's JSON error
object with its status, never a traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..decoding.events import TokenEvent
from ..engines.registry import ResolvedModel, engine_kind
from ..errors import (
    ContextOverflowError,
    EngineBusyError,
    MemoryBudgetError,
    ModelFileError,
    ModelLoadError,
    SpecDecError,
    UnknownModelError,
)
from ..sessions.generation import Generation
from ..sessions.manager import EngineManager
from ..sessions.pair import DEFAULT, Pair, Remembered
from ..settings import RunSettings
from . import shapes
from .requests import CompletionRequest, parse_request
from .served import ServedModel, ServedModels

MAX_BODY_BYTES = 1 << 20
RETRY_AFTER_SECONDS = 5
_END = object()  # the run has ended (its stats or error are on the Generation)

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
    if isinstance(exc, ModelFileError | ModelLoadError | MemoryBudgetError):
        return 503
    if isinstance(exc, SpecDecError | ValueError):
        return 400
    return 500


def error_response(exc: BaseException) -> JSONResponse:
    status = status_of(exc)
    message = str(exc) if status != 500 else f"internal error: {type(exc).__name__}"
    reasons = getattr(exc, "reasons", None)
    if reasons:
        message = f"{message} ({'; '.join(reasons)})" if reasons[0] not in message else message
    headers = exc.headers if isinstance(exc, HttpError) else {}
    if status == 429:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS), **headers}
    return JSONResponse(shapes.error(message, status), status_code=status, headers=headers)


class SpecDecServer:
    """The endpoints' state: the manager, the served models, the key, the bounded queue."""

    def __init__(
        self,
        manager: EngineManager,
        models: ServedModels,
        *,
        api_key: str | None = None,
        max_waiting: int = 16,
        max_body_bytes: int = MAX_BODY_BYTES,
    ):
        self.manager, self.models, self.api_key = manager, models, api_key
        self.max_waiting, self.max_body_bytes = max_waiting, max_body_bytes
        self._in_flight = 0
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------

    def guarded(self, handler: Handler) -> Handler:
        """The key checked first; any error turned into OpenAI's error object."""

        async def endpoint(request: Request) -> Response:
            try:
                self._authorize(request)
                return await handler(request)
            except Exception as exc:
                return error_response(exc)

        return endpoint

    def _authorize(self, request: Request) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
            raise HttpError(401, "missing or wrong API key; send 'Authorization: Bearer KEY'")

    async def _body(self, request: Request) -> object:
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

    # -- models ------------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        loaded = self.manager.loaded()
        if request.url.path.startswith("/v1"):
            data = [
                {"id": s.id, "object": "model", "created": 0, "owned_by": "specdec_jupyter"}
                for s in self.models
            ]
        else:
            data = [s.describe(s.model in loaded) for s in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def one_model(self, request: Request) -> Response:
        served = self.models.get(request.path_params["model_id"])
        return JSONResponse(served.describe(served.model in self.manager.loaded()))

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
        remembered = self.manager.default_draft(main.model)
        if remembered is not None:
            default = self.models.id_of_key(remembered)
        else:  # the engine's default pair, as the local chat opens it
            pair_main, pair_draft = engine_kind(main.model.kind).default_pair
            default = pair_draft if main.id == pair_main else None
        if default not in {entry["id"] for entry in compatible}:
            default = None
        return {"compatible": compatible, "incompatible": incompatible, "default": default}

    # -- completions ---------------------------------------------------------------

    async def chat_completions(self, request: Request) -> Response:
        return await self._complete(parse_request(await self._body(request), chat=True))

    async def completions(self, request: Request) -> Response:
        return await self._complete(parse_request(await self._body(request), chat=False))

    async def _complete(self, request: CompletionRequest) -> Response:
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
        if not request.stream:
            collected = [event async for event in _drain(events)]
            _raise_error(run)
            assert run.stats is not None
            return JSONResponse(shapes.completion(events=collected, stats=run.stats, **common))
        first = await events.get()  # an error before the first token is a status, not a chunk
        if first is _END:
            _raise_error(run)
        chunks = self._chunks(run, events, first, request.include_usage, common)
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
        """The run on a worker thread, and the queue its events (then `_END`) arrive on."""
        with self._lock:
            if self._in_flight >= self.max_waiting:
                raise HttpError(429, f"{self._in_flight} requests are waiting; retry later")
            self._in_flight += 1
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def on_event(event: TokenEvent) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        def on_end(run: Generation) -> None:
            with self._lock:
                self._in_flight -= 1
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
                self._in_flight -= 1
            raise
        return run, events

    async def _chunks(
        self,
        run: Generation,
        events: asyncio.Queue,
        first: object,
        include_usage: bool,
        common: dict[str, Any],
    ) -> AsyncIterator[str]:
        """SSE: a chunk per batch of tokens that arrived together, the stats last, [DONE]."""
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
                yield _sse(error_response_body(run.error))
            else:
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


def error_response_body(exc: BaseException) -> dict[str, Any]:
    return json.loads(error_response(exc).body)


def _sse(body: dict[str, Any]) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _drain(events: asyncio.Queue) -> AsyncIterator[TokenEvent]:
    while (item := await events.get()) is not _END:
        yield item


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
    routes.append(Route("/api/v0/models/{model_id:path}", g(server.one_model)))
    return Starlette(routes=routes)


async def _health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})
