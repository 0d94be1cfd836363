"""A completion request's body, read and checked in one place: its JSON shape here, its run
settings by the package's one declaration (`settings.RunSettings`: every field of it is a
body field of the same name).

Every field a client sends is either used or refused with a 400 naming it: OpenAI's fields
this server has no way to honour (`n` > 1, `tools`, `logprobs`, a JSON `response_format`,
penalties) are accepted only at the value that changes nothing, which is what clients send
by default; a field nobody defines is refused, so a typo never passes for a setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import SettingsError
from ..sessions.pair import DEFAULT, Remembered
from ..settings import RunSettings, shown

MAX_TOKENS_LIMIT = 8192  # the most a request may ask for
DEFAULT_MAX_TOKENS = 512  # what "no limit" (absent, null or LM Studio's -1) means here
ROLES = ("system", "user", "assistant")
ROLE_ALIASES = {"developer": "system"}  # OpenAI's newer name for the system role

# Fields used, besides the run settings; "max_completion_tokens" is OpenAI's newer name for
# max_tokens, "user" an end-user id that changes no reply.
USED = ("model", "stream", "stream_options", "draft_model", "max_completion_tokens", "user")
# Fields taken only at the value that changes nothing (null is always taken).
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "best_of": (1,),
    "logprobs": (False, 0),
    "top_logprobs": (0,),
    "echo": (False,),
    "tools": ([],),
    "tool_choice": ("none",),
    "functions": ([],),
    "function_call": ("none",),
    "parallel_tool_calls": (True, False),
    "response_format": ({"type": "text"},),
    "frequency_penalty": (0,),
    "presence_penalty": (0,),
    "repeat_penalty": (1,),
    "logit_bias": ({},),
    "store": (False,),
    "suffix": ("",),
}


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
    _refuse_unused(body, "messages" if chat else "prompt")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError('"model" is required: an id from GET /v1/models')
    prompt = _messages(body) if chat else _prompt(body)
    draft = body.get("draft_model", DEFAULT)
    if draft is not DEFAULT and draft is not None and not isinstance(draft, str):
        raise RequestError('"draft_model" must be a model id, or null for no draft')
    stream_options = body.get("stream_options") or {}
    if not isinstance(stream_options, dict) or set(stream_options) - {"include_usage"}:
        raise RequestError('"stream_options" must be an object with at most "include_usage"')
    return CompletionRequest(
        model=model,
        prompt=prompt,
        settings=_settings(body, chat),
        stream=_flag(body, "stream"),
        include_usage=_flag(stream_options, "include_usage", '"stream_options.include_usage"'),
        draft_model=draft,
    )


def _refuse_unused(body: dict[str, Any], prompt_field: str) -> None:
    """Refuse, by name, a field that would be ignored: one this server cannot honour at the
    value given, or one it does not know."""
    known = {*USED, *RunSettings.names(), *NEUTRAL, prompt_field}
    unknown = sorted(str(name) for name in body if name not in known)
    if unknown:
        raise RequestError(
            f"unknown field {unknown[0]!r}; a request takes "
            f"{', '.join(sorted({*USED, *RunSettings.names(), prompt_field}))}"
        )
    for name, neutral in NEUTRAL.items():
        value = body.get(name)
        if value is not None and not any(_same(value, allowed) for allowed in neutral):
            shown = " or ".join(repr(allowed) for allowed in neutral)
            raise RequestError(f'"{name}" is not supported here (only {shown}, or leave it out)')


def _same(value: object, allowed: object) -> bool:
    """JSON equality, where true is not 1 and 1.0 is 1."""
    return (type(value) is bool and value is allowed) or (
        type(value) is not bool and type(allowed) is not bool and value == allowed
    )


def _flag(body: dict[str, Any], name: str, shown: str | None = None) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RequestError(f"{shown or repr(name)} must be true or false, got {value!r:.40}")
    return value


def _settings(body: dict[str, Any], chat: bool) -> RunSettings:
    """The run settings the body gives (null: the default), checked before the run starts
    (so a bad one is a 400); /v1/completions sends its prompt as it is."""
    given = {name: body[name] for name in RunSettings.names() if body.get(name) is not None}
    limit = body.get("max_tokens")
    if limit is None:
        limit = body.get("max_completion_tokens")
    given["max_tokens"] = _max_tokens(limit)
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
    return [_message(message, i) for i, message in enumerate(messages)]


def _message(message: object, index: int) -> dict[str, str]:
    """One message as the templates take it: a role and its text (text parts joined)."""
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise RequestError(f'{where} must be {{"role": ..., "content": text}}')
    extra = sorted(str(key) for key in message if key not in ("role", "content", "name"))
    if extra:
        raise RequestError(f"{where} has {extra[0]!r}, which this server does not take")
    role = message.get("role")
    role = ROLE_ALIASES.get(role, role) if isinstance(role, str) else role
    if role not in ROLES:
        raise RequestError(f'{where}["role"] must be one of {", ".join(ROLES)}, got {role!r:.40}')
    return {"role": role, "content": _content(message.get("content"), where)}


def _content(content: object, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RequestError(f"{where} has a {kind!r:.40} part; only text parts are taken")
            if not isinstance(part.get("text"), str):
                raise RequestError(f'{where} has a text part without "text"')
            texts.append(part["text"])
        return "".join(texts)
    raise RequestError(f'{where}["content"] must be text or a list of text parts')


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
    if value is None or (type(value) is int and value == -1):
        return DEFAULT_MAX_TOKENS
    if type(value) is int and value > MAX_TOKENS_LIMIT:
        raise RequestError(f'"max_tokens" is at most {MAX_TOKENS_LIMIT} here, got {shown(value)}')
    return value
