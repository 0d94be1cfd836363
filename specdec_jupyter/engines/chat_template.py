"""Rendering a model's own chat template (Jinja, from its metadata), and the prompt's tokens.

Templates come from downloaded files, so they render in a process of their own
(template_worker.py: Jinja's immutable sandbox, a million loop steps, a memory and a CPU
limit), and that process is killed when a rendering passes RENDER_SECONDS: whatever a template
computes, it ends within its budget and cannot hang or fill the kernel (a real one renders in
milliseconds). The output may hold the messages plus MAX_OUTPUT_CHARS of the template's own.
Any failure inside a template is a ChatTemplateError, not a traceback.

A message's text is text: `chat_tokens` parses control tokens (`<|im_end|>`) only in what the
template wrote, never in what a message says, so no message can forge a turn. `raw=True` is
the one way to send control tokens.
"""

from __future__ import annotations

import atexit
import json
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from ..errors import SpecDecError

RENDER_SECONDS = 2.0
MAX_OUTPUT_CHARS = 1_000_000  # beyond the messages' own text
START_SECONDS = 60.0  # for the rendering process to start on a busy machine
WORKER = Path(__file__).with_name("template_worker.py")
ADVICE = "pass the prompt as plain text (raw=True), or use a model with a simpler template"


class ChatTemplateError(SpecDecError):
    """The model's chat template is missing or failed on these messages."""


class _Worker:
    """The rendering process: started when first needed, killed at a deadline (and started
    again for the next rendering)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        atexit.register(self.stop)

    def render(self, request: dict, model_name: str) -> str:
        with self._lock:
            process = self._started(model_name)
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps(request).encode() + b"\n")
                process.stdin.flush()
                line = _read_line(process.stdout, RENDER_SECONDS)
            except OSError as exc:  # it ended between two renderings
                self.stop()
                raise ChatTemplateError(
                    f"the chat template of {model_name} could not be rendered: its sandbox "
                    f"process ended ({exc}); try again"
                ) from exc
            except BaseException:  # a Ctrl-C while it renders: start afresh next time
                self.stop()
                raise
            if line is None:
                self.stop()
                raise ChatTemplateError(
                    f"the chat template of {model_name} runs too long (over "
                    f"{RENDER_SECONDS} s); {ADVICE}"
                )
        return _text_of(line, model_name)

    def _started(self, model_name: str) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        process = subprocess.Popen(
            [sys.executable, "-I", str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C is the kernel's, not the worker's
        )
        assert process.stdout is not None
        if _read_line(process.stdout, START_SECONDS) != b'{"ready": true}\n':
            process.kill()
            process.wait()
            raise ChatTemplateError(
                f"cannot render the chat template of {model_name}: its sandbox process did "
                f"not start ({sys.executable} {WORKER})"
            )
        self._process = process
        return process

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()


def _read_line(stream: IO[bytes], seconds: float) -> bytes | None:
    """A whole line from `stream`, or None when none began within `seconds` (a process that
    ended gives b"")."""
    ready, _, _ = select.select([stream], [], [], seconds)
    return stream.readline() if ready else None


def _text_of(line: bytes, model_name: str) -> str:
    try:
        answer = json.loads(line)
    except ValueError:  # cut short: the worker was ended by its own limits
        answer = {"error": "steps", "message": "over its CPU or memory limit"}
    if "text" in answer:
        return answer["text"]
    kind, message = answer.get("error"), answer.get("message", "")
    if kind == "refused":
        raise ChatTemplateError(f"the model's chat template refused the messages: {message}")
    if kind == "steps":
        raise ChatTemplateError(
            f"the chat template of {model_name} runs too long ({message}); {ADVICE}"
        )
    if kind == "output":
        raise ChatTemplateError(
            f"the chat template of {model_name} writes over {MAX_OUTPUT_CHARS} characters "
            f"besides the messages; {ADVICE}"
        )
    raise ChatTemplateError(f"the chat template of {model_name} failed: {message}")


_WORKER = _Worker()


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
                f"a chat message must be a dict with 'role' and 'content', got {message!r:.80}"
            )
    own = sum(len(str(message["content"])) for message in messages)
    request = {
        "template": template,
        "messages": list(messages),
        "bos_token": bos_token,
        "eos_token": eos_token,
        "max_output": MAX_OUTPUT_CHARS + own,
    }
    return _WORKER.render(request, model_name)


Tokenize = Callable[[str, bool, bool], list[int]]  # (text, parse control tokens, first piece)


def tokens_of_chat(
    text: str,
    messages: Sequence[dict[str, str]],
    tokenize: Tokenize,
    *,
    model_name: str,
) -> list[int]:
    """The tokens of a rendered prompt `text`, control tokens parsed only where the template
    wrote them. A message whose text would parse as control tokens (has_control_text) is found
    in `text` and tokenized as text; one the template rewrote past finding is refused, since
    its control tokens could not be kept apart."""
    risky = [m["content"] for m in messages if has_control_text(m["content"], tokenize)]
    if not risky:
        return tokenize(text, True, True)
    tokens: list[int] = []
    start = 0
    for content in risky:
        found = text.find(content, start)
        if found < 0:
            raise ChatTemplateError(
                f"a message holds control tokens' text ({content[:40]!r}...) and the chat "
                f"template of {model_name} rewrites it, so they cannot be kept as text; "
                "remove them, or send the whole prompt with raw=True"
            )
        if found > start:
            tokens += tokenize(text[start:found], True, not tokens)
        tokens += tokenize(content, False, not tokens)
        start = found + len(content)
    if start < len(text):
        tokens += tokenize(text[start:], True, not tokens)
    return tokens


def has_control_text(text: str, tokenize: Tokenize) -> bool:
    """Whether `text` holds a control token's text (`<|im_end|>`), which a tokenizer parsing
    them would read as that token."""
    return bool(text) and tokenize(text, True, False) != tokenize(text, False, False)
