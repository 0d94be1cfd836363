"""A completion request's body, read and checked in one place: its JSON shape here, its settings
by the package's one validation (`settings.RunSettings`), as `EngineManager.start` takes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import SettingsError
from ..settings import RunSettings

MAX_TOKENS_LIMIT = 8192  # the most a request may ask for
DEFAULT_MAX_TOKENS = 512
ABSENT = object()  # "draft_model" not given: the main model's default draft applies


class RequestError(SettingsError):
    """A request body that does not say what it must (a 400)."""


@dataclass
class CompletionRequest:
    model: str
    prompt: str | list[dict[str, str]]  # messages for chat, text for completions
    stream: bool = False
    include_usage: bool = False
    draft_model: object = ABSENT  # an id, None for no draft, or ABSENT
    options: dict[str, Any] = field(default_factory=dict)  # Session.stream's keywords

    @property
    def chat(self) -> bool:
        return not isinstance(self.prompt, str)


def parse_request(body: object, *, chat: bool) -> CompletionRequest:
    """The request in `body` (parsed JSON); anything malformed is a RequestError naming it."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError('"model" is required: an id from GET /v1/models')
    prompt = _messages(body) if chat else _prompt(body)
    options: dict[str, Any] = {"max_tokens": _max_tokens(body.get("max_tokens"))}
    for name, kind in (("temperature", float), ("top_p", float), ("top_k", int), ("seed", int)):
        value = body.get(name)
        if value is not None:
            options[name] = _number(name, value, kind)
    stop = body.get("stop")
    if stop is not None:
        options["stop"] = stop
    options["draft_tokens"] = body.get("draft_tokens", "auto")
    draft_mode = body.get("draft_mode")
    if draft_mode is not None:
        options["draft_mode"] = draft_mode
    if not chat:
        options["raw"] = True
    draft = body.get("draft_model", ABSENT)
    if draft is not ABSENT and draft is not None and not isinstance(draft, str):
        raise RequestError('"draft_model" must be a model id, or null for no draft')
    _validate(options)
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise RequestError('"stream_options" must be an object')
    return CompletionRequest(
        model=model,
        prompt=prompt,
        stream=bool(body.get("stream", False)),
        include_usage=bool(stream_options.get("include_usage", False)),
        draft_model=draft,
        options=options,
    )


def _messages(body: dict) -> list[dict[str, str]]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError('"messages" must be a non-empty list of {"role", "content"} objects')
    for message in messages:
        if (
            not isinstance(message, dict)
            or message.get("role") not in ("system", "user", "assistant")
            or not isinstance(message.get("content"), str)
        ):
            raise RequestError(
                'each message must be {"role": "system"|"user"|"assistant", "content": text}'
            )
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise RequestError('"prompt" must be a non-empty string')
    return prompt


def _max_tokens(value: object) -> int:
    if value is None or value == -1:  # LM Studio's "no limit"
        return DEFAULT_MAX_TOKENS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestError(f'"max_tokens" must be a positive integer, got {value!r}')
    if value > MAX_TOKENS_LIMIT:
        raise RequestError(f'"max_tokens" is at most {MAX_TOKENS_LIMIT} here, got {value}')
    return value


def _number(name: str, value: object, kind: type) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(f'"{name}" must be a number, got {value!r}')
    if kind is int and value != int(value):
        raise RequestError(f'"{name}" must be an integer, got {value!r}')
    return kind(value)


def _validate(options: dict[str, Any]) -> None:
    """The checks `Session.stream` makes, made before the run starts (so they are a 400)."""
    try:
        RunSettings.among(options)
    except SettingsError as exc:
        raise RequestError(str(exc)) from exc
