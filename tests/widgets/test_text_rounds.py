"""The teacher's rounds with a draft of another vocabulary, which drafts text: the draft's own
tokens, the text they spell, the main model's tokens for it and the verdict on each, taken
from the loop's own round. On tiny models of two vocabularies, on a scripted pair whose
characters split across tokens at other places, and on Qwen2.5-Coder 1.5B with SmolLM2-135M."""

from __future__ import annotations

import json

import pytest

from specdec_jupyter.decoding import round as one_round
from specdec_jupyter.decoding.text_drafts import TextDrafter, complete_length
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.sessions.pair import Pair
from specdec_jupyter.widgets import TeachWidget
from specdec_jupyter.widgets.teach.trace import RoundTrace, readable
from specdec_jupyter.widgets.teach.walkthrough import Walkthrough
from tests.support.real_models import catalog_file
from tests.support.scripted_engine import END, GOOSE, GOOSE_HEAD, GOOSE_TAIL, ScriptedEngine
from tests.widgets.test_walkthrough import sequential_loop, teacher, walk

PROMPTS = ["def add(a, b):", "hello world"]


@pytest.fixture
def outcomes(monkeypatch) -> list[one_round.RoundOutcome]:
    """The outcome of each round the walkthrough runs (run_round's `round_steps`)."""
    recorded: list[one_round.RoundOutcome] = []
    steps = one_round.round_steps

    def recording(*args):
        outcome = yield from steps(*args)
        recorded.append(outcome)
        return outcome

    monkeypatch.setattr(one_round, "round_steps", recording)
    return recorded


def check_text_round(trace: RoundTrace, outcome: one_round.RoundOutcome, main, draft) -> None:
    """The trace shows what the round did: the draft's own tokens as the drafter wrote them, the
    text they spell, the proposals (the main model's tokens for the front of it), each judged."""
    text, proposed = trace.text_draft, outcome.draft
    if text is None:  # one token left before the limit: nothing asked of the draft
        assert proposed.tokens == [] and trace.stages == ["draft", "score", "bonus"]
        return
    assert text.model == draft.name
    assert [token.token_id for token in text.own] == proposed.own_tokens
    assert [token.text for token in text.own] == [
        readable(draft.token_bytes(token)) for token in proposed.own_tokens
    ]
    assert [p.token_id for p in trace.proposals] == proposed.tokens
    assert [p.drafted_as for p in trace.proposals] == (proposed.covered_by or [])
    written = b"".join(draft.token_bytes(token) for token in proposed.own_tokens)
    sent = b"".join(main.token_bytes(token) for token in proposed.tokens)
    assert written.startswith(sent) and text.proposed == readable(sent)
    assert text.text + text.waiting == readable(written)
    assert text.waiting == readable(written[complete_length(written) :])
    if complete_length(sent) == len(sent):  # the proposals end on a whole character
        assert text.proposed + text.held_back == text.text
    stages = ["draft", "retokenize", "score"] if text.own else ["draft", "score"]
    assert trace.stages[: len(stages)] == stages
    for proposal, q in zip(trace.proposals, proposed.q, strict=True):
        assert proposal.q == q
        if proposed.deterministic:  # a point mass: q = 1 on the token, 0 on the others
            assert [c.token_id for c in proposal.candidates if c.q] == [proposal.token_id]
        assert proposal.drafted_as  # the draft's tokens that covered it
    for check, proposal in zip(trace.checks, trace.proposals, strict=False):
        if check.u is not None:
            assert check.acceptance == pytest.approx(min(1.0, proposal.p / proposal.q))
            assert check.accepted == (check.u < check.acceptance)
    if trace.residual is not None and proposed.deterministic:  # p without the drafted token
        rejected = trace.proposals[trace.n_accepted].token_id
        assert rejected not in [bar.token_id for bar in trace.residual]
        assert all(bar.excess > 0 for bar in trace.residual)


def text_walk(session, prompt: str, k: int, **changes) -> Walkthrough:
    return walk(
        session.main,
        session.draft,
        session.prompt_tokens(prompt),
        k,
        draft_prompt=session.draft_prompt_tokens(prompt),
        **changes,
    )


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize(("temperature", "seed"), [(0.0, 0), (1.0, 0), (1.0, 1), (0.6, 2)])
def test_a_text_walkthrough_is_the_loop_round_by_round(
    cross_session, outcomes, prompt, temperature, seed
):
    """Same seed, same k: the loop's events (drafted_as and all), each round traced from its
    outcome."""
    main, draft = cross_session.main, cross_session.draft
    drafter = TextDrafter(draft, main, cross_session.draft_prompt_tokens(prompt))
    tokens = cross_session.prompt_tokens(prompt)
    options = {"temperature": temperature, "seed": seed, "max_tokens": 30}
    loop = sequential_loop(main, drafter, tokens, **options)
    walkthrough = text_walk(cross_session, prompt, 3, **options)
    assert walkthrough.events == loop.events
    assert walkthrough.stop_reason == loop.stats.stop_reason
    assert len(outcomes) == len(walkthrough.rounds) == loop.stats.rounds
    for trace, outcome in zip(walkthrough.rounds, outcomes, strict=True):
        check_text_round(trace, outcome, main, draft)
    counts = walkthrough.counts()  # in the main model's tokens, as the loop's stats
    assert counts["drafted"] == loop.stats.total_draft_tokens_count
    assert counts["accepted"] == loop.stats.accepted_draft_tokens_count
    assert any(trace.text_draft.own and trace.proposals for trace in walkthrough.rounds)


def test_greedy_text_rounds_give_plain_decodings_tokens(cross_session):
    """Exact models: whatever the draft wrote, the main model's greedy tokens."""
    for prompt in PROMPTS:
        plain = cross_session.generate(prompt, use_draft=False, max_tokens=30, temperature=0)
        walkthrough = text_walk(cross_session, prompt, 4, temperature=0.0, max_tokens=30)
        assert [event.token_id for event in walkthrough.events] == plain.token_ids


def test_a_text_round_in_words(cross_session):
    walkthrough = Walkthrough(
        cross_session.prompt_tokens(PROMPTS[0]),
        3,
        teacher(temperature=0.0),
        draft_prompt=cross_session.draft_prompt_tokens(PROMPTS[0]),
    )
    walkthrough.step(cross_session.main, cross_session.draft)
    trace = walkthrough.current
    own = trace.text_draft.own[0]
    text = trace.describe()
    assert text.startswith(
        f"round 1: other, of another vocabulary, wrote {len(trace.text_draft.own)}"
    )
    assert f"{own.text!r} #{own.token_id}" in text
    assert f"the main model's tokenizer reads it: proposed {trace.text_draft.proposed!r}" in text
    assert f"proposed: {len(trace.proposals)} main-model tokens" in text
    assert "drafted as" in text and "q = 1.000" in text
    assert (
        json.loads(json.dumps(trace.to_dict()))["text_draft"]["own"][0]["token_id"] == own.token_id
    )


def cut(start: int, stop: int) -> str:
    """How a label shows bytes start:stop of the goose, a cut character: in hex."""
    return f"⟨{GOOSE.encode()[start:stop].hex(' ')}⟩"


class ThreeOne(ScriptedEngine):
    """Another vocabulary for the same text: the goose's four bytes split 3 + 1, where the main
    model's tokens split them 2 + 2."""

    def token_bytes(self, token: int) -> bytes:
        halves = {GOOSE_HEAD: GOOSE.encode()[:3], GOOSE_TAIL: GOOSE.encode()[3:]}
        return b"" if token == END else halves.get(token, bytes([token % 256]))


def scripted(main: dict[str, str], draft: dict[str, str], k: int) -> Walkthrough:
    """A greedy generation after "a" on scripted models (a script maps a character, or a goose's
    half, to what follows it), walked to its end."""
    names = {"head": GOOSE_HEAD, "tail": GOOSE_TAIL, "end": END}

    def ids(script: dict[str, str]) -> dict[int, int]:
        token = lambda name: names[name] if name in names else ord(name)  # noqa: E731
        return {token(a): token(b) for a, b in script.items()}

    pair = ScriptedEngine(ids(main), name="main"), ThreeOne(ids(draft), name="draft")
    walkthrough = Walkthrough(
        pair[0].tokenize("a"), k, teacher(temperature=0.0), draft_prompt=pair[1].tokenize("a")
    )
    while not walkthrough.done:
        walkthrough.finish_round(*pair)
    return walkthrough


def test_bytes_of_a_cut_character_wait_on_either_side():
    """The main model cuts the goose in two, so the next round has no whole text to continue;
    the draft ends inside one, whose bytes wait and are not proposed."""
    main = {"a": "b", "b": "head", "head": "tail", "tail": "c", "c": "d", "d": "end"}
    draft = {"b": "x", "x": "end", "tail": "c", "c": "head", "head": "end", "d": "end"}
    walkthrough = scripted(main, draft, k=2)
    assert "".join(event.text for event in walkthrough.events) == f"b{GOOSE}cd"
    wrong, halfway, waits, ended = walkthrough.rounds

    assert [token.text for token in wrong.text_draft.own] == ["x"]
    assert wrong.rejected and wrong.next_token.text == cut(0, 2)  # half a goose: the correction

    assert halfway.text_draft.reply_waiting == cut(0, 2) and halfway.text_draft.own == []
    assert halfway.proposals == [] and halfway.stages == ["draft", "score", "bonus"]
    assert halfway.next_token.text == cut(2, 4)
    assert f"the text so far ends inside a character ({cut(0, 2)} waits)" in halfway.describe()

    text = waits.text_draft
    assert [(t.token_id, t.text) for t in text.own] == [(ord("c"), "c"), (GOOSE_HEAD, cut(0, 3))]
    assert (text.text, text.waiting, text.proposed, text.held_back) == ("c", cut(0, 3), "c", "")
    assert waits.n_accepted == 1 and not waits.rejected and waits.next_token.text == "d"
    assert f"then {cut(0, 3)} waiting for the rest of a character" in waits.describe()

    assert ended.text_draft.own == [] and ended.text_draft.reply_waiting == ""
    assert "ended its text at once" in ended.describe() and ended.next_token.text == "⟨end⟩"


def test_a_proposal_that_ends_inside_a_character_holds_the_rest_back():
    """k = 1 and the main model's tokenizer reads the draft's goose as two tokens: the first is
    proposed, the rest of the character held back."""
    walkthrough = scripted(
        {"a": "b", "b": "head", "head": "tail", "tail": "end"},
        {"b": "head", "head": "tail", "tail": "end"},
        k=1,
    )
    first = walkthrough.rounds[0]
    text = first.text_draft
    assert [token.text for token in text.own] == [cut(0, 3), cut(3, 4)]
    assert (text.text, text.proposed, text.held_back) == (GOOSE, cut(0, 2), cut(2, 4))
    assert [p.token_id for p in first.proposals] == [GOOSE_HEAD]
    assert len(first.proposals[0].drafted_as) == 1  # the draft's first token covered it
    assert first.checks[0].accepted and first.next_token.token_id == GOOSE_TAIL
    assert "".join(event.text for event in walkthrough.events) == f"b{GOOSE}"


def test_the_teacher_opens_on_a_draft_of_another_vocabulary(cross_paths, tmp_path, monkeypatch):
    """Found as the only draft for the main model: it teaches rounds of text (greedy: each
    proposal a point mass)."""
    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SPECDEC_MODELS_DIR", str(cross_paths[0].parent))
    monkeypatch.setenv("SPECDEC_MODEL_PATH", "")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub"))
    manager = EngineManager(n_ctx=256, n_threads=1)
    try:
        widget = TeachWidget(
            str(cross_paths[0]), manager=manager, prompt=PROMPTS[0], k=3, temperature=0
        )
        assert (widget.main_model, widget.draft_model) == ("main.gguf", "other.gguf")
        trace = widget.trace
        assert trace["stages"][:3] == ["draft", "retokenize", "score"]
        assert trace["text_draft"]["own"] and trace["text_draft"]["model"] == "other"
        assert len(trace["proposals"]) == 3 and all(p["q"] == 1 for p in trace["proposals"])
        widget.finish_round()
        widget.step()
        assert widget.trace["number"] == 2 and widget.counts["drafted"] >= 3
        assert len(widget.tokens) == 1 + trace["n_accepted"] + 1
    finally:
        manager.close()


@pytest.mark.real
def test_smollm2_drafts_text_for_qwen_in_the_teacher(outcomes):
    """Qwen2.5-Coder 1.5B taught with SmolLM2-135M as its draft, greedy: the pair the teacher
    holds is exact, so its tokens are plain decoding's; emoji and CJK split across tokens."""
    manager = EngineManager(n_ctx=2048)
    main, draft = (
        str(catalog_file(name)) for name in ("qwen2.5-coder-1.5b", "smollm2-135m-instruct")
    )
    prompt = "Reply with three emoji about the sea 🌊 and the word for sea in Chinese (海)."
    try:
        widget = TeachWidget(
            main, draft, manager=manager, prompt=prompt, k=3, temperature=0, max_tokens=24
        )
        assert widget.trace["text_draft"]["model"].lower().startswith("smollm2")
        while not widget.walkthrough.done:
            widget.finish_round()
        walkthrough = widget.walkthrough
        with manager.hold(Pair(main, draft, options=manager.options.settled(True))) as session:
            assert session.main.exact and session.text_level
            plain = session.generate(prompt, use_draft=False, temperature=0, max_tokens=24)
            for trace, outcome in zip(walkthrough.rounds, outcomes, strict=True):
                check_text_round(trace, outcome, session.main, session.draft)
    finally:
        manager.close()
    assert [event.token_id for event in walkthrough.events] == plain.token_ids
    accepted = [event for event in walkthrough.events if event.source == "draft"]
    assert accepted and all(event.drafted_as for event in accepted)
    assert walkthrough.counts()["accepted"] == len(accepted)
