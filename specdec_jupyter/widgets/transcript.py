"""The chat transcript format, shared by the Python widget, the JS front end and the HTML fallback.

A token on the wire is `TokenEvent.to_dict()` with probabilities rounded (js/src/transcript.js
reads the same keys, and types them as `Token` and `Message`). A message is a dict: `role`
("user" | "assistant"), `content`, and for a reply `tokens`, `stats` (LM Studio's names),
`stats_rows` (the same stats formatted for people, so Python alone decides how they read),
`rounds` (rounds.py: what each round drafted and kept), `main_model`, `draft_model`,
`settings`, and `error` when the reply ended on one; a regenerated reply also carries its
other versions (versions.py). Streaming
replies travel in batches of at most `MAX_UPDATES_PER_SECOND` custom messages, so a fast model
does not flood the browser.
"""

from __future__ import annotations

import html
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..decoding.events import GenerationStats, TokenEvent
from ..display.reply_html import reply_to_html
from ..display.stats_layout import Baseline, rows_to_html, stats_rows

Message = dict[str, Any]
Round = dict[str, Any]
MAX_UPDATES_PER_SECOND = 30
PROBABILITY_DIGITS = 4


def token_to_wire(event: TokenEvent) -> dict[str, Any]:
    data = event.to_dict()
    for key in ("p_main", "q_draft", "acceptance"):
        if data[key] is not None:
            data[key] = round(data[key], PROBABILITY_DIGITS)
    return data


def token_from_wire(data: dict[str, Any]) -> TokenEvent:
    return TokenEvent(**{**data, "rejected": tuple(data.get("rejected", ()))})


def reply_message(
    events: Iterable[TokenEvent],
    stats: GenerationStats | None,
    *,
    main_model: str,
    draft_model: str | None,
    settings: dict[str, Any],
    error: str | None = None,
    baseline: Baseline | None = None,
) -> Message:
    """A finished (or stopped, or failed) reply with its provenance; `baseline`: plain
    decoding's speed to compare with, when one is known."""
    events = list(events)
    tokens = [token_to_wire(event) for event in events]
    message: Message = {
        "role": "assistant",
        "content": "".join(token["text"] for token in tokens),
        "tokens": tokens,
        "main_model": main_model,
        "draft_model": draft_model,
        "settings": dict(settings),
    }
    if stats is not None:
        message["stats"] = stats.to_dict()
        message["stats_rows"] = [list(row) for row in stats_rows(stats, baseline)]
        message["rounds"] = round_summaries(events, stats)
    if error is not None:
        message["error"] = error
    return message


def round_summaries(events: Sequence[TokenEvent], stats: GenerationStats) -> list[Round]:
    """One summary per drafting round (round 0, the prompt's pass, drafts nothing)."""
    accepted = Counter(event.round for event in events if event.source == "draft")
    emitted = Counter(event.round for event in events)
    default = "model" if stats.draft_model else None
    kinds = stats.draft_kinds
    return [
        {
            "round": number,
            "drafted": drafted,
            "accepted": accepted[number],
            "emitted": emitted[number],
            "source": (kinds[number - 1] if number <= len(kinds) else default) if drafted else None,
        }
        for number, drafted in enumerate(stats.draft_lengths, start=1)
    ]


def conversation_to_html(messages: list[Message], error: str | None = None) -> str:
    """The chat as static HTML with the widget's colours, for places without a live kernel."""
    parts = []
    for message in messages:
        if message["role"] == "user":
            text = html.escape(message["content"])
            parts.append(
                "<div style='margin:6px 0'><span style='background:#f0f0f0;border-radius:6px;"
                f"padding:2px 8px;white-space:pre-wrap'>{text}</span></div>"
            )
        elif message["role"] == "assistant":
            events = [token_from_wire(token) for token in message.get("tokens", [])]
            models = [message.get("main_model"), message.get("draft_model")]
            provenance = " · draft ".join(name for name in models if name)
            parts.append(
                f"<div style='margin:6px 0'>{reply_to_html(events)}</div>"
                f"<div style='font-size:0.85em;color:#777'>{html.escape(provenance)}</div>"
                f"{rows_to_html(message.get('stats_rows', []))}"
            )
        if message.get("error"):
            parts.append(_error_html(message["error"]))
    if error:
        parts.append(_error_html(error))
    return f"<div class='specdec-chat-static'>{''.join(parts) or '<i>No messages yet.</i>'}</div>"


def _error_html(text: str) -> str:
    return f"<div style='color:#b00020'>{html.escape(text)}</div>"


class TokenBatcher:
    """Collects token events and hands them on at most `rate` times a second.

    With `timer`, tokens that arrive too soon after a batch are sent by a timer thread,
    so the last tokens of a round show before the next round is computed; without it
    (when `send` must run on the caller's thread) they wait for the next `add`. Call
    `flush` at the end for whatever is pending. `send` receives wire tokens.
    """

    def __init__(
        self,
        send: Callable[[list[dict[str, Any]]], None],
        rate: float = MAX_UPDATES_PER_SECOND,
        *,
        timer: bool = True,
    ):
        self._send = send
        self._interval = 1.0 / rate
        self._use_timer = timer
        self._pending: list[dict[str, Any]] = []
        self._last_sent = float("-inf")
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def add(self, event: TokenEvent) -> None:
        with self._lock:
            self._pending.append(token_to_wire(event))
            wait = self._last_sent + self._interval - time.monotonic()
            if wait > 0 and self._use_timer and self._timer is None:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if wait <= 0:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if batch:
                self._last_sent = time.monotonic()
                self._send(batch)  # under the lock, so batches never overtake each other
