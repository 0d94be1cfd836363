"""Response bodies: OpenAI's completion objects, LM Studio's `stats`, `model_info`, `runtime`,
our per-token `provenance`, and OpenAI's error object."""

from __future__ import annotations

import platform
import time
import uuid
from collections.abc import Sequence
from typing import Any

from ..decoding.events import GenerationStats, TokenEvent
from ..sessions.wire import stats_to_dict, token_to_dict
from .served import ServedModel

RUNTIME = {
    "name": "specdec_jupyter",
    "version": "0.1.0",
    "supported_formats": ["gguf", "mlx"],
    "python": platform.python_version(),
}
LENGTH_REASONS = {"maxPredictedTokensReached", "contextLengthReached"}


def new_id(chat: bool) -> str:
    return f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"


def finish_reason(stats: GenerationStats) -> str:
    return "length" if stats.stop_reason in LENGTH_REASONS else "stop"


def provenance(events: Sequence[TokenEvent]) -> list[dict[str, Any]]:
    """Each token as the wire has it: token_id, text, source (draft|main), p_main, q_draft,
    acceptance (min(1, p/q)), round, kind (which of the main model's tokens) and the draft
    tokens a correction rejected."""
    return [token_to_dict(event) for event in events]


def stats_body(stats: GenerationStats, draft_id: str | None) -> dict[str, Any]:
    """LM Studio's stats; a draft model is named by the id a client would send."""
    data = stats_to_dict(stats)
    if draft_id is not None and stats.draft_model is not None:
        data["draft_model"] = draft_id
    return data


def usage(stats: GenerationStats) -> dict[str, int]:
    prompt, completion = stats.prompt_tokens_count, stats.predicted_tokens_count
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def model_info(served: ServedModel) -> dict[str, Any]:
    info = served.info
    return {
        "arch": info.architecture if info else "n-gram",
        "quant": (info.quantization if info else None) or "none",
        "format": info.format if info else served.model.kind,
        "context_length": (info.context_length if info else None) or 1024,
    }


def completion(
    *,
    response_id: str,
    served: ServedModel,
    events: Sequence[TokenEvent],
    stats: GenerationStats,
    chat: bool,
    draft_id: str | None = None,
) -> dict[str, Any]:
    """A whole (non-streamed) reply: OpenAI's body plus stats, model_info, runtime, usage."""
    text = "".join(e.text for e in events)
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason(stats), "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    body = _envelope(response_id, served, "chat.completion" if chat else "text_completion", choice)
    return {**body, "usage": usage(stats), **_closing(stats, served, draft_id), **_tokens(events)}


def chunk(
    *,
    response_id: str,
    served: ServedModel,
    events: Sequence[TokenEvent],
    chat: bool,
    first: bool = False,
    stats: GenerationStats | None = None,
    include_usage: bool = False,
    draft_id: str | None = None,
) -> dict[str, Any]:
    """One streamed chunk carrying `events` (their text and provenance); the last one
    (`stats` given) carries the finish reason, the stats and, when asked, usage."""
    text = "".join(e.text for e in events)
    reason = finish_reason(stats) if stats is not None else None
    choice: dict[str, Any] = {"index": 0, "finish_reason": reason, "logprobs": None}
    if chat:
        delta: dict[str, Any] = {"role": "assistant"} if first else {}
        if text:
            delta["content"] = text
        choice["delta"] = delta
    else:
        choice["text"] = text
    kind = "chat.completion.chunk" if chat else "text_completion"
    body = {**_envelope(response_id, served, kind, choice), **_tokens(events)}
    if stats is not None:
        body |= _closing(stats, served, draft_id)
        if include_usage:
            body["usage"] = usage(stats)
    return body


def _envelope(
    response_id: str, served: ServedModel, kind: str, choice: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": kind,
        "created": int(time.time()),
        "model": served.id,
        "choices": [choice],
    }


def _closing(stats: GenerationStats, served: ServedModel, draft_id: str | None) -> dict[str, Any]:
    """What LM Studio adds to a finished reply: stats, model_info, runtime."""
    return {
        "stats": stats_body(stats, draft_id),
        "model_info": model_info(served),
        "runtime": RUNTIME,
    }


def _tokens(events: Sequence[TokenEvent]) -> dict[str, Any]:
    return {"provenance": provenance(events)}


def error(message: str, status: int, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error object."""
    kinds = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}
    kinds |= {413: "invalid_request_error", 429: "rate_limit_error", 503: "server_error"}
    return {
        "error": {
            "message": message,
            "type": kinds.get(status, "server_error"),
            "param": None,
            "code": code,
        }
    }
