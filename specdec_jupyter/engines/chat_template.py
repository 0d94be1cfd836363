"""Rendering a model's own chat template (Jinja, from its metadata) in a sandbox.

Templates come from downloaded files, so they run in Jinja's immutable sandbox
with only the helpers Hugging Face templates expect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import SpecDecError


class ChatTemplateError(SpecDecError):
    """The model's chat template is missing or failed on these messages."""


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(f"the model's chat template refused the messages: {message}")


def _tojson(value: object, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.filters["tojson"] = _tojson
    return env


def render_chat(
    template: str | None,
    messages: Sequence[dict[str, str]],
    *,
    model_name: str,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """The prompt text for `messages`, ending where the assistant's reply begins."""
    if not template:
        raise ChatTemplateError(
            f"{model_name} has no chat template in its metadata; pass the prompt as plain "
            "text (raw=True) instead of chat messages"
        )
    for message in messages:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise ChatTemplateError(
                f"a chat message must be a dict with 'role' and 'content', got {message!r}"
            )
    try:
        return (
            _environment()
            .from_string(template)
            .render(
                messages=list(messages),
                add_generation_prompt=True,
                bos_token=bos_token,
                eos_token=eos_token,
            )
        )
    except TemplateError as exc:
        raise ChatTemplateError(f"the chat template of {model_name} failed: {exc}") from exc
