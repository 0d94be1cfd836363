"""A completion request's body, read and checked in one place: its JSON shape here, its run
settings by the package's one declaration (`settings.RunSettings`: every field of it is a
body field of the same name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import SettingsError
from ..sessions.pair import DEFAULT, Remembered
from ..settings import RunSettings

MAX_TOKENS_LIMIT = 8192  # the most a request may ask for
DEFAULT_MAX_TOKENS = 512  # what "no limit" (absent, null or LM Studio's -1) means here


class RequestError(SettingsError):
    """A request body that does not say what it must (a 400)."""


@dataclass
class CompletionRequest:
    model: str
    prompt: str | list[dict[str, str]]  # messages for chat, text for completions
    settings: RunSettings
    stream: bool = False
    include_usage: bool = False
    draft_model: str | Remembered | None = DEFAULT  # an id, None for no draft, or DEFAULT

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
    draft = body.get("draft_model", DEFAULT)
    if draft is not DEFAULT and draft is not None and not isinstance(draft, str):
        raise RequestError('"draft_model" must be a model id, or null for no draft')
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise RequestError('"stream_options" must be an object')
    return CompletionRequest(
        model=model,
        prompt=prompt,
        settings=_settings(body, chat),
        stream=bool(body.get("stream", False)),
        include_usage=bool(stream_options.get("include_usage", False)),
        draft_model=draft,
    )


def _settings(body: dict[str, Any], chat: bool) -> RunSettings:
    """The run settings the body gives (null: the default), checked before the run starts
    (so a bad one is a 400); /v1/completions sends its prompt as it is."""
    given = {name: body[name] for name in RunSettings.names() if body.get(name) is not None}
    given["max_tokens"] = _max_tokens(body.get("max_tokens"))
    if not chat:
        given["raw"] = True
    try:
        return RunSettings.of(None, **given)
    except SettingsError as exc:
        raise RequestError(str(exc)) from exc


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


def _max_tokens(value: object) -> object:
    """LM Studio's "no limit" is this server's default; past the limit is refused here, and
    anything else is the settings' to check."""
    if value is None or value == -1:
        return DEFAULT_MAX_TOKENS
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_TOKENS_LIMIT:
        raise RequestError(f'"max_tokens" is at most {MAX_TOKENS_LIMIT} here, got {value}')
    return value
