"""A reply: `finish_reply` makes the message of a finished one, for the chat and `%%specdec`
alike, and `ReplyWidget` streams one into a notebook cell, for `%%specdec`: tokens are
appended, not re-rendered, as the chat appends them; the finished reply (tokens, stats,
models) is the `messages` trait, so a saved notebook reopens with it, and an HTML copy goes
with the output for places without a kernel (GitHub, nbconvert)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import traitlets as t

from ..decoding.events import GenerationStats, TokenEvent
from ..display.stats_layout import stats_rows
from ..sessions import plain_speeds
from ..sessions.wire import Message, reply_message, stats_to_dict
from .base import STATIC, Widget
from .batching import TokenBatcher
from .continuation import continued_stats, extend_reply
from .conversation_html import conversation_to_html


def finish_reply(
    events: Sequence[TokenEvent],
    stats: GenerationStats | None,
    *,
    error: str | None,
    speeds_of: str,
    main_model: str,
    draft_model: str | None,
    settings: dict[str, Any],
    continues: Message | None = None,
) -> Message:
    """The message of a finished (or stopped, or failed) reply, with its provenance and its
    speed beside plain decoding's of the main model `speeds_of` (a plain run's is remembered
    for the next). `continues`: the reply this one continues, which comes back extended, with
    the stats of both parts as one run's."""
    baseline = plain_speeds.compare_and_remember(speeds_of, stats) if stats else None
    reply = reply_message(
        events,
        stats,
        error=error,
        baseline=baseline,
        main_model=main_model,
        draft_model=draft_model,
        settings=settings,
    )
    if continues is None:
        return reply
    reply = extend_reply(continues, reply)
    if stats is not None and "stats" in continues:
        whole = continued_stats(continues["stats"], stats)
        reply["stats"] = stats_to_dict(whole)
        reply["stats_rows"] = [list(row) for row in stats_rows(whole, baseline)]
    return reply


class ReplyWidget(Widget):
    """A reply on its way: `add(event)` as tokens come (sent in batches of at most 30 a
    second), `finish(message)` with the finished reply."""

    _esm = STATIC / "reply.js"
    _css = STATIC / "chat.css"

    _chat_id = t.Unicode().tag(sync=True)
    messages = t.List(t.Dict()).tag(sync=True)  # the finished reply, once there is one

    def __init__(self, **traits: Any) -> None:
        super().__init__(_chat_id=uuid.uuid4().hex, **traits)
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
