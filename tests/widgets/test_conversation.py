"""The chat's conversation as plain data: each action's effect, without a widget, a thread or a
model."""

from __future__ import annotations

import pytest

from specdec_jupyter.widgets.base import Widget
from specdec_jupyter.widgets.chat import conversation as talk
from specdec_jupyter.widgets.chat.conversation import Conversation, Refused
from specdec_jupyter.widgets.reply import ReplyWidget


def reply(text: str) -> dict:
    return {"role": "assistant", "content": text, "tokens": []}


def chat(*texts: str) -> Conversation:
    """A conversation of alternating user messages and replies."""
    messages = [
        {"role": "user", "content": text} if i % 2 == 0 else reply(text)
        for i, text in enumerate(texts)
    ]
    return Conversation(messages)


def contents(conversation: Conversation) -> list[str]:
    return [m["content"] for m in conversation.messages]


def test_asking_appends_and_ends_the_offer_to_undo():
    cleared = talk.clear(chat("hi", "hello"))
    asked = talk.ask(cleared, "again")
    assert contents(asked) == ["again"] and asked.undone is None and asked.undo_label == ""


def test_clear_and_edit_can_be_undone():
    three = chat("a", "b", "c")
    cleared = talk.clear(three)
    assert cleared.messages == [] and cleared.undo_label == "Undo clear (brings back 3 messages)"
    assert talk.undo(cleared).messages == three.messages
    edited = talk.edit(three, 0, "A")
    assert contents(edited) == ["A"] and "brings back 3 messages" in edited.undo_label
    assert talk.undo(edited).messages == three.messages
    with pytest.raises(Refused, match="Nothing to undo"):
        talk.undo(talk.undo(edited))


def test_edits_that_cannot_be_are_refused_in_words():
    with pytest.raises(Refused, match="Message 1 is not one of yours"):
        talk.edit(chat("a", "b"), 1, "x")
    with pytest.raises(Refused, match="cannot be empty"):
        talk.edit(chat("a", "b"), 0, "  ")


def test_regenerate_adds_a_version_and_the_versions_switch():
    before, last = talk.last_reply(chat("q", "first"))
    assert contents(before) == ["q"] and last["content"] == "first"
    again = talk.add_reply(before, reply("second"), "version", last)
    assert again.messages[-1]["version"] == 1 and len(again.messages[-1]["versions"]) == 2
    shown = talk.show_version(again, 1, 0)
    assert contents(shown) == ["q", "first"]
    with pytest.raises(Refused, match="versions 0 to 1, not 5"):
        talk.show_version(again, 1, 5)


def test_continue_replaces_the_reply_it_extends_and_the_model_reads_it_last():
    before, last = talk.last_reply(chat("q", "half"))
    assert talk.prompt(before.messages, last) == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "half"},
    ]
    extended = talk.add_reply(before, reply("half and whole"), "continue", last)
    assert contents(extended) == ["q", "half and whole"]


def test_no_reply_to_take_back_leaves_the_conversation_as_it_is():
    asked = chat("q")
    same, last = talk.last_reply(asked)
    assert last is None and same.messages == asked.messages


def test_a_widget_refuses_keyword_arguments_it_has_no_trait_for():
    with pytest.raises(TypeError, match=r"ReplyWidget\(\) got unknown keyword arguments mesages"):
        ReplyWidget(mesages=[])
    assert issubclass(ReplyWidget, Widget)
