"""Continuing the assistant's last message: the reply carries on where its text ends, the
same tokens an uninterrupted greedy run would have produced after it."""

from __future__ import annotations

import pytest

from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.errors import SettingsError
from specdec_jupyter.sessions.session import Session

PROMPT = "the cat sat on"


@pytest.fixture
def toy_session() -> Session:
    return Session(*toy_pair())


@pytest.mark.parametrize("cut", [1, 3, 6])
def test_a_trailing_assistant_message_is_continued_not_answered(toy_session, cut):
    whole = toy_session.generate(PROMPT, max_tokens=12, draft_tokens=2)
    begun = "".join(e.text for e in whole.events[:cut])
    conversation = [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": begun},
    ]
    continued = toy_session.generate(conversation, max_tokens=12 - cut, draft_tokens=2)
    assert begun + continued.text == whole.text
    assert continued.token_ids == whole.token_ids[cut:]
    assert continued.stats.accepted_draft_tokens_count == sum(
        e.source == "draft" for e in continued.events
    )


def test_continue_flag_needs_a_trailing_assistant_message(toy_session):
    with pytest.raises(SettingsError, match="end with the assistant"):
        toy_session.generate([{"role": "user", "content": PROMPT}], continue_=True)
    with pytest.raises(SettingsError, match="as messages"):
        toy_session.generate(PROMPT, continue_=True)


def test_tiny_gguf_continues_through_its_chat_template(tiny_session):
    whole = tiny_session.generate("hello", max_tokens=10, draft_tokens=2)
    begun = "".join(e.text for e in whole.events[:4])
    continued = tiny_session.generate(
        [{"role": "user", "content": "hello"}, {"role": "assistant", "content": begun}],
        max_tokens=6,
        draft_tokens=2,
    )
    assert continued.stats.predicted_tokens_count >= 1
    prompt = tiny_session.prompt_tokens(
        [{"role": "user", "content": "hello"}, {"role": "assistant", "content": begun}]
    )
    assert prompt[: -len(tiny_session.main.tokenize(begun, special=False))] == (
        tiny_session.prompt_tokens([{"role": "user", "content": "hello"}])
    )
