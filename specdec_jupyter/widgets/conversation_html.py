"""A conversation (wire messages) as static HTML with the widgets' colours, for places without a
live kernel: nbconvert, GitHub, a chat's `snapshot()`."""

from __future__ import annotations

import html

from ..display.reply_html import reply_to_html
from ..display.stats_layout import rows_to_html
from ..sessions.wire import Message, token_from_dict


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
            events = [token_from_dict(token) for token in message.get("tokens", [])]
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
