"""Token events' text at the end of a generation: a run that stops inside a multi-byte
character still shows every byte it generated (U+FFFD where the character is cut), for
every stop reason, in the loop and in the walkthrough alike."""

from __future__ import annotations

import pytest

from specdec_jupyter.sessions.session import Session
from specdec_jupyter.settings import RunSettings
from specdec_jupyter.widgets.teach.walkthrough import Walkthrough
from tests.support.scripted_engine import END, GEESE, GOOSE, GOOSE_HEAD, ScriptedEngine

CUT = "\ufffd"  # what the first half of a goose shows when nothing completes it


def session(draft: bool = True, **options) -> Session:
    return Session(ScriptedEngine(**options), ScriptedEngine(**options) if draft else None)


@pytest.mark.parametrize("draft", [True, False])
@pytest.mark.parametrize(("max_tokens", "text"), [(1, CUT), (2, GOOSE), (3, GOOSE + CUT)])
def test_max_tokens_inside_a_character_keeps_its_bytes(draft, max_tokens, text):
    result = session(draft).generate(GOOSE * 8, raw=True, max_tokens=max_tokens, draft_tokens=2)
    assert result.stats.stop_reason == "maxPredictedTokensReached"
    assert result.text == text
    assert result.events[-1].text == (CUT if max_tokens % 2 else GOOSE)


def test_an_end_right_after_half_a_character_flushes_it_into_that_token():
    half_then_end = {**GEESE, GOOSE_HEAD: END}
    result = session(script=half_then_end).generate(GOOSE, raw=True, draft_tokens=2)
    assert result.stats.stop_reason == "eosFound"
    assert [e.text for e in result.events] == [CUT, ""], "the end token adds no text"


def test_a_cancelled_run_flushes_what_it_holds():
    polls = iter(range(100))
    result = session().generate(
        GOOSE, raw=True, draft_tokens=1, should_stop=lambda: next(polls) >= 1
    )
    assert result.stats.stop_reason == "userStopped"
    assert result.text == GOOSE + CUT  # the first token (a head), then one round: tail, head


def test_a_full_context_flushes_what_it_holds():
    result = session(n_ctx=4).generate(GOOSE, raw=True, draft_tokens=2)
    assert result.stats.stop_reason == "contextLengthReached"
    assert result.text == GOOSE + CUT


def test_a_token_ending_inside_a_character_waits_for_the_rest():
    """Between rounds, the events handed out so far hold whole characters only: a token
    ending inside one comes out with the token that completes it."""
    s = session()
    shown: list[int] = []

    def whole_so_far() -> bool:
        b"".join(s.main.token_bytes(token) for token in shown).decode()  # raises if cut
        return False

    for event in s.stream(GOOSE, raw=True, max_tokens=6, draft_tokens=1, should_stop=whole_so_far):
        shown.append(event.token_id)
    assert b"".join(s.main.token_bytes(token) for token in shown).decode() == GOOSE * 3


@pytest.mark.parametrize("max_tokens", [1, 2, 3, 5])
def test_the_walkthrough_flushes_as_the_loop_does(max_tokens):
    loop = session().generate(GOOSE * 2, raw=True, max_tokens=max_tokens, draft_tokens=2)
    main, draft = ScriptedEngine(), ScriptedEngine()
    walkthrough = Walkthrough(main.tokenize(GOOSE * 2), 2, RunSettings(max_tokens=max_tokens))
    while not walkthrough.done:
        walkthrough.finish_round(main, draft)
    assert walkthrough.events == loop.events
    assert "".join(e.text for e in walkthrough.visible_events) == loop.text
