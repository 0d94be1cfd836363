"""One reply streaming into a notebook cell, for `%%specdec`: tokens are appended, not
re-rendered, as the chat appends them; the finished reply (tokens, stats, models) is the
`messages` trait, so a saved notebook reopens with it, and an HTML copy goes with the
output for places without a kernel (GitHub, nbconvert)."""

from __future__ import annotations

import uuid
from typing import Any

import anywidget
import traitlets as t

from ..decoding.events import TokenEvent
from .chat.widget import STATIC
from .transcript import Message, TokenBatcher, conversation_to_html


class ReplyWidget(anywidget.AnyWidget):
    """A reply on its way: `add(event)` as tokens come (sent in batches of at most 30 a
    second), `finish(message)` with the finished reply."""

    _esm = STATIC / "reply.js"
    _css = STATIC / "chat.css"

    _chat_id = t.Unicode().tag(sync=True)
    messages = t.List(t.Dict()).tag(sync=True)  # the finished reply, once there is one

    def __init__(self) -> None:
        super().__init__(_chat_id=uuid.uuid4().hex)
        # Sent from the thread that adds: display messages need the cell's context.
        self._batcher = TokenBatcher(
            lambda tokens: self.send({"type": "tokens", "tokens": tokens}), timer=False
        )
        self.send({"type": "reply_start"})

    def add(self, event: TokenEvent) -> None:
        self._batcher.add(event)

    def finish(self, reply: Message) -> None:
        self._batcher.flush()
        self.messages = [reply]

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        return {**data, "text/html": conversation_to_html(self.messages)}, metadata
