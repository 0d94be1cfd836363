"""A chat's conversation as plain data, and what each of the chat's actions does to it: send,
edit, clear, undo, take back the last reply (to regenerate or continue it), add a reply,
show another version. No widget, no thread, no model: the ChatWidget holds one
`Conversation` and shows it; these functions are tested on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from ...engines.base import ChatMessage
from ...sessions.wire import Message
from . import versions

# How a reply joins the conversation: a new message, a new version of the last reply
# (Regenerate), or more of the last reply's text (Continue).
ReplyKind = Literal["new", "version", "continue"]


class Refused(ValueError):
    """An action the conversation cannot take as it is; the message says why, for the user."""


@dataclass(frozen=True)
class Conversation:
    """The messages (wire dicts), and what Undo brings back: the messages before the last Clear
    or edit (`undone`, None when there is nothing to undo) and, in words, `undo_label`."""

    messages: list[Message] = field(default_factory=list)
    undone: list[Message] | None = None
    undo_label: str = ""

    def moved_on(self, messages: list[Message]) -> Conversation:
        """`messages`, with the offer to undo gone: the conversation has moved on."""
        return Conversation(messages)

    def undoable(self, messages: list[Message], label: str) -> Conversation:
        """`messages`, with Undo bringing these back."""
        return Conversation(messages, list(self.messages), label)


def ask(conversation: Conversation, text: str) -> Conversation:
    """A message of the user's, appended."""
    return conversation.moved_on([*conversation.messages, {"role": "user", "content": text}])


def edit(conversation: Conversation, index: int, text: str) -> Conversation:
    """User message `index` replaced by `text`, and what came after it gone (undoable)."""
    messages = conversation.messages
    if not 0 <= index < len(messages) or messages[index]["role"] != "user":
        raise Refused(f"Message {index} is not one of yours to edit.")
    if not text.strip():
        raise Refused("An edited message cannot be empty: write something.")
    kept = [*messages[:index], {"role": "user", "content": text}]
    return conversation.undoable(kept, f"Undo edit (brings back {len(messages) - index} messages)")


def clear(conversation: Conversation) -> Conversation:
    """No messages (undoable)."""
    count = len(conversation.messages)
    return conversation.undoable([], f"Undo clear (brings back {count} messages)")


def undo(conversation: Conversation) -> Conversation:
    """The messages as they were before the last Clear or edit."""
    if conversation.undone is None:
        raise Refused("Nothing to undo.")
    return Conversation(conversation.undone)


def last_reply(conversation: Conversation) -> tuple[Conversation, Message | None]:
    """The conversation without its last reply, and that reply (None when the last message is
    not a reply): what Regenerate makes a new version of and Continue extends."""
    messages = conversation.messages
    if not messages or messages[-1]["role"] != "assistant":
        return conversation.moved_on(messages), None
    *before, reply = messages
    return conversation.moved_on(before), reply


def add_reply(
    conversation: Conversation, reply: Message, kind: ReplyKind, base: Message | None
) -> Conversation:
    """`reply` appended: as it is, as the newest version of `base` (Regenerate), or in place
    of `base`, which it extends (Continue), keeping `base`'s other versions."""
    if base is not None and kind == "version":
        reply = versions.add_version(base, reply)
    elif base is not None and kind == "continue":
        reply = versions.replace_shown(base, reply)
    return replace(conversation, messages=[*conversation.messages, reply])


def show_version(conversation: Conversation, index: int, version: int) -> Conversation:
    """Version `version` of reply `index` shown, with the conversation that followed it."""
    try:
        messages = versions.show_version(conversation.messages, index, version)
    except IndexError as exc:
        raise Refused(f"{exc}.") from None
    return replace(conversation, messages=messages)


def prompt(messages: list[Message], continued: Message | None = None) -> list[ChatMessage]:
    """What the model reads: each message's role and text (empty ones left out), and, last,
    the reply being continued, so the model carries on where its text ends."""
    shown = [*messages, continued] if continued is not None else messages
    return [{"role": m["role"], "content": m["content"]} for m in shown if m["content"]]
