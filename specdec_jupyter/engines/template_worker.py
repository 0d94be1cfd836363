"""The process chat templates render in: Jinja's immutable sandbox, a loop-step and an output
budget, a memory limit and a CPU-time limit, one request a line on stdin, one reply a line on
stdout.

Templates come from downloaded model files, and a template can compute anything Jinja can
(`9 ** 9 ** 9`, a loop over a ten-million-character string): no check inside the renderer can
stop a single long operation in C. So rendering runs here, in a process of its own that
chat_template.py kills at the deadline; the limits set here end it even if that process is
gone. This file runs as a script (`python -I template_worker.py`) and imports only jinja2 and
the standard library.

A request: {"template", "messages", "bos_token", "eos_token", "max_output"}. A reply:
{"text": ...} or {"error": "steps" | "output" | "refused" | "failed", "message": ...}.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_LOOP_STEPS = 1_000_000
MEMORY_BYTES = 2 << 30  # what one rendering may hold: a template cannot fill the machine
CPU_SECONDS = 5  # per rendering, should nobody be left to stop it


class Refused(Exception):
    """The render ends with this reply: `kind` and a message for the user."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _raise_exception(message: str) -> None:
    raise Refused("refused", str(message))


def _tojson(
    value: object,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    """transformers' `tojson`, which templates are written for."""
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


class _Steps:
    """Loop steps over `range`, counted on every pass."""

    def __init__(self) -> None:
        self.count = 0

    def step(self) -> None:
        self.count += 1
        if self.count > MAX_LOOP_STEPS:
            raise Refused("steps", f"over {MAX_LOOP_STEPS} loop steps")

    def range(self, *args: int) -> _CountedRange:
        return _CountedRange(range(*args), self)


class _CountedRange:
    def __init__(self, numbers: range, steps: _Steps):
        self.numbers, self.steps = numbers, steps

    def __iter__(self) -> Iterator[int]:
        for number in self.numbers:
            self.steps.step()
            yield number

    def __len__(self) -> int:
        return len(self.numbers)


def _environment(steps: _Steps) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["range"] = steps.range
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    env.filters["tojson"] = _tojson
    return env


def render(request: dict[str, Any]) -> str:
    """The template's text for the request's messages, within the step and output budgets."""
    steps = _Steps()
    chunks = (
        _environment(steps)
        .from_string(request["template"])
        .generate(
            messages=request["messages"],
            add_generation_prompt=True,
            bos_token=request.get("bos_token", ""),
            eos_token=request.get("eos_token", ""),
        )
    )
    limit, size, text = request["max_output"], 0, []
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise Refused("output", f"writes over {limit} characters")
        text.append(chunk)
    return "".join(text)


def reply(request: dict[str, Any]) -> dict[str, str]:
    try:
        return {"text": render(request)}
    except Refused as refused:
        return {"error": refused.kind, "message": str(refused)}
    except (TemplateError, ArithmeticError, RecursionError, TypeError, ValueError,
            LookupError, AttributeError, MemoryError) as exc:  # fmt: skip
        return {"error": "failed", "message": f"{type(exc).__name__}: {exc}"}


def _limit(resource_kind: int, soft: int) -> None:
    import resource

    _, hard = resource.getrlimit(resource_kind)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource_kind, (soft, hard))


def _limit_cpu_for_one_render() -> None:
    """The CPU limit is the process's total: raise it to what was used plus one render's."""
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    _limit(resource.RLIMIT_CPU, math.ceil(used.ru_utime + used.ru_stime) + CPU_SECONDS)


def serve() -> None:
    """Answer requests until stdin closes."""
    with contextlib.suppress(ImportError, ValueError, OSError):  # else the deadline holds
        import resource

        _limit(resource.RLIMIT_AS, MEMORY_BYTES)
    sys.setrecursionlimit(2000)
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        with contextlib.suppress(ImportError, ValueError, OSError):
            _limit_cpu_for_one_render()
        try:
            answer = reply(json.loads(line))
        except (ValueError, KeyError) as exc:
            answer = {"error": "failed", "message": f"a bad request: {exc}"}
        out.write(json.dumps(answer).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    serve()
