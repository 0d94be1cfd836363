"""Rendering a model's own chat template (Jinja, from its metadata) in a sandbox.

Templates come from downloaded files, so they run in Jinja's immutable sandbox
with only the helpers Hugging Face templates expect, and within a budget: loops over
`range` stop after RENDER_SECONDS or MAX_LOOP_STEPS steps, the output after
MAX_OUTPUT_CHARS, so a template cannot hang the kernel (a real one renders in
milliseconds). Any failure inside a template is a ChatTemplateError, not a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
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


RENDER_SECONDS = 2.0
MAX_LOOP_STEPS = 1_000_000
MAX_OUTPUT_CHARS = 1_000_000


class _Budget:
    """The time and loop steps one rendering may take."""

    def __init__(self, model_name: str):
        self.model_name = model_name
        self.deadline = time.monotonic() + RENDER_SECONDS
        self.steps = 0

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_LOOP_STEPS or time.monotonic() > self.deadline:
            raise ChatTemplateError(
                f"the chat template of {self.model_name} runs too long (over "
                f"{MAX_LOOP_STEPS} loop steps or {RENDER_SECONDS} s); pass the prompt as plain "
                "text (raw=True), or use a model with a simpler template"
            )

    def range(self, *args: int) -> _CountedRange:
        return _CountedRange(range(*args), self)


class _CountedRange:
    """A `range` whose every step, on every pass, counts against the budget."""

    def __init__(self, numbers: range, budget: _Budget):
        self.numbers = numbers
        self.budget = budget

    def __iter__(self) -> Iterator[int]:
        for number in self.numbers:
            self.budget.step()
            yield number

    def __len__(self) -> int:
        return len(self.numbers)


def _environment(budget: _Budget) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["range"] = budget.range
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
    budget = _Budget(model_name)
    try:
        chunks = (
            _environment(budget)
            .from_string(template)
            .generate(
                messages=list(messages),
                add_generation_prompt=True,
                bos_token=bos_token,
                eos_token=eos_token,
            )
        )
        return _bounded_output(chunks, budget)
    except ChatTemplateError:
        raise
    except (TemplateError, ArithmeticError, RecursionError, TypeError, ValueError,
            LookupError, AttributeError, MemoryError) as exc:  # fmt: skip
        raise ChatTemplateError(
            f"the chat template of {model_name} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _bounded_output(chunks: Iterator[str], budget: _Budget) -> str:
    """The rendered text, refused once it grows past MAX_OUTPUT_CHARS."""
    text: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise ChatTemplateError(
                f"the chat template of {budget.model_name} writes over {MAX_OUTPUT_CHARS} "
                "characters; pass the prompt as plain text (raw=True)"
            )
        budget.step(0)
        text.append(chunk)
    return "".join(text)
