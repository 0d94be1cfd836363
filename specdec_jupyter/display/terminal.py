"""Tokens in a terminal: accepted draft tokens green (ANSI), the main model's own plain."""

from __future__ import annotations

from ..decoding.events import TokenEvent

ANSI_GREEN = "\x1b[32m"
ANSI_RESET = "\x1b[0m"


def event_to_ansi(event: TokenEvent, color: bool) -> str:
    if color and event.source == "draft" and event.text:
        return f"{ANSI_GREEN}{event.text}{ANSI_RESET}"
    return event.text
