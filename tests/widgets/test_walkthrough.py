"""Rounds taken apart for the teaching widget: the same tokens and decisions as the loop,
with every stage's numbers kept."""

from __future__ import annotations

import numpy as np
import pytest

from specdec_jupyter.decoding import loop as loop_module
from specdec_jupyter.decoding import round as one_round
from specdec_jupyter.decoding.drafters import ModelDrafter, drive
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.decoding.sampling import SamplingSettings, distribution
from specdec_jupyter.decoding.verify import residual_distribution, verify_sampling
from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.sessions.result import GenerationResult
from specdec_jupyter.sessions.session import Session
from specdec_jupyter.settings import RunSettings
from specdec_jupyter.widgets.teach.trace import prob, trace_round
from specdec_jupyter.widgets.teach.walkthrough import (
    TEACHER,
    Walkthrough,
    expected_tokens_per_round,
)
from tests.support.recording import drain
from tests.support.scripted_engine import END, ScriptedEngine

PROMPT = "when the draft model"
SAMPLING = SamplingSettings(temperature=1.0)


def sequential_loop(main, drafter, prompt: list[int], *, temperature: float, seed: int,
                    max_tokens: int) -> GenerationResult:  # fmt: skip
    """The loop at k = 3 with the walkthrough's randomness: one generator from the seed,
    drawn in sequence (a seeded loop otherwise draws by keyed noise)."""
    settings = RunSettings(
        max_tokens=max_tokens, temperature=temperature, draft_tokens=3, seed=seed
    )
    run = speculative_decode(main, drafter, prompt, settings, rng=np.random.default_rng(seed))
    return GenerationResult(*drain(run))


def teacher(**changes) -> RunSettings:
    """The teacher's settings with `changes`."""
    return RunSettings.of(TEACHER, **changes)


def walk(main, draft, prompt: list[int], k: int = 3, draft_prompt=None, **changes) -> Walkthrough:
    walkthrough = Walkthrough(prompt, k, teacher(**changes), draft_prompt=draft_prompt)
    while not walkthrough.done:
        walkthrough.finish_round(main, draft)
    return walkthrough


@pytest.mark.parametrize("temperature", [0.0, 1.0, 0.6])
@pytest.mark.parametrize("seed", range(6))
def test_a_walkthrough_emits_the_loops_tokens(temperature, seed):
    """Same seed, same fixed k: the same tokens from the same sources, round by round."""
    main, draft = toy_pair()
    options = {"max_tokens": 40, "seed": seed}
    prompt = Session(main, draft).prompt_tokens(PROMPT)
    loop = sequential_loop(main, ModelDrafter(draft), prompt, temperature=temperature, **options)
    walkthrough = walk(*toy_pair(), prompt, k=3, temperature=temperature, **options)
    assert [(e.token_id, e.source, e.round) for e in walkthrough.events] == [
        (e.token_id, e.source, e.round) for e in loop.events
    ]
    assert walkthrough.stop_reason == loop.stats.stop_reason
    assert "".join(e.text for e in walkthrough.visible_events) == loop.text
    counts = walkthrough.counts()
    assert counts["rounds"] == loop.stats.rounds
    assert counts["drafted"] == loop.stats.total_draft_tokens_count
    assert counts["rejected"] == loop.stats.rejected_draft_tokens_count


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_the_walkthrough_runs_the_loops_rounds(monkeypatch, temperature):
    """Both run `round_steps` (the walkthrough through `run_round`): with one seed and a
    fixed k, the same outcomes round by round, and the same events, numbers and all."""
    outcomes: dict[str, list] = {"loop": [], "walkthrough": []}
    steps = one_round.round_steps
    for name, module in [("loop", loop_module), ("walkthrough", one_round)]:

        def recorded(*args, name=name):
            outcome = yield from steps(*args)
            outcomes[name].append(outcome)
            return outcome

        monkeypatch.setattr(module, "round_steps", recorded)
    main, draft = toy_pair()
    prompt = main.tokenize(PROMPT)
    loop = sequential_loop(
        main, ModelDrafter(draft), prompt, temperature=temperature, seed=4, max_tokens=30
    )
    walkthrough = walk(*toy_pair(), prompt, k=3, temperature=temperature, max_tokens=30, seed=4)

    def summary(outcome):
        verification = outcome.verification
        return (
            outcome.draft.tokens,
            verification.n_accepted,
            verification.next_token,
            verification.acceptance,
            verification.draws,
            outcome.emitted,
        )

    assert len(outcomes["loop"]) == loop.stats.rounds >= 3
    assert list(map(summary, outcomes["walkthrough"])) == list(map(summary, outcomes["loop"]))
    assert walkthrough.events == loop.events


@pytest.mark.parametrize("seed", range(20))
def test_decisions_are_verify_samplings_with_the_same_draws(seed):
    """Draft with the drafter and judge with verify_sampling from one seeded generator:
    the trace shows exactly those decisions, and each u decides as min(1, p/q) says."""
    main, draft = toy_pair()
    context = main.tokenize(PROMPT)
    trace = trace_round(main, draft, context, 4, SAMPLING, np.random.default_rng(seed), 1)

    main, draft = toy_pair()
    rng = np.random.default_rng(seed)
    proposed = drive(ModelDrafter(draft).propose(context, 4, SAMPLING, rng))
    rows = main.evaluate([*context, *proposed.tokens], n_logits=len(proposed) + 1)
    p_rows = [distribution(row, SAMPLING) for row in rows]
    verdict = verify_sampling(proposed.tokens, proposed.probs, p_rows, rng)

    assert [p.token_id for p in trace.proposals] == proposed.tokens
    n = len(trace.checks)  # all verify_sampling judged, unless an accepted ⟨end⟩ came first
    assert [c.acceptance for c in trace.checks] == verdict.acceptance[:n]
    assert [c.u for c in trace.checks] == verdict.draws[:n]
    if trace.ended:
        assert main.is_end_of_generation(proposed.tokens[n - 1]) and verdict.n_accepted >= n
        assert trace.n_accepted == n and trace.stages[-1] == "end"
        return
    assert trace.n_accepted == verdict.n_accepted
    assert trace.next_token.token_id == verdict.next_token
    for check, proposal in zip(trace.checks, trace.proposals, strict=False):
        assert check.accepted == (check.u < check.acceptance)
        assert check.acceptance == pytest.approx(min(1.0, proposal.p / proposal.q))
    if trace.rejected:
        i = trace.n_accepted
        residual = residual_distribution(p_rows[i], proposed.probs[i])
        assert [bar.prob for bar in trace.residual] == pytest.approx(
            sorted(residual[residual > 0], reverse=True)[: len(trace.residual)]
        )
        excess = np.maximum(p_rows[i] - proposed.probs[i], 0.0)  # p - q before normalising
        for bar in trace.residual:
            assert bar.excess == pytest.approx(excess[bar.token_id])
            assert bar.prob == pytest.approx(bar.excess / excess.sum())
        assert trace.stages[-2:] == ["residual", "correction"]
    else:
        assert trace.residual is None and trace.stages[-1] == "bonus"
    assert trace.stages[:2] == ["draft", "score"]
    assert trace.stages.count("check") == len(trace.checks)


def test_both_outcomes_occur_over_seeds():
    outcomes = set()
    for seed in range(20):
        main, draft = toy_pair()
        context = main.tokenize(PROMPT)
        trace = trace_round(main, draft, context, 4, SAMPLING, np.random.default_rng(seed), 1)
        outcomes.add(trace.rejected)
    assert outcomes == {True, False}


def test_candidates_show_the_draft_token_and_both_models_favourites():
    main, draft = toy_pair()
    context = main.tokenize(PROMPT)
    trace = trace_round(main, draft, context, 3, SAMPLING, np.random.default_rng(3), 1, top_n=4)
    for proposal in trace.proposals:
        ids = [c.token_id for c in proposal.candidates]
        assert proposal.token_id in ids and len(ids) == len(set(ids)) <= 4 + 4 + 1
        qs = [c.q for c in proposal.candidates]
        assert qs[0] == max(qs)
        assert all(0 <= c.p <= 1 and 0 <= c.q <= 1 for c in proposal.candidates)
    assert all(c.q is None for c in trace.after_draft) and len(trace.after_draft) == 4


def test_greedy_rounds_judge_by_argmax_without_draws():
    main, draft = toy_pair()
    context = main.tokenize(PROMPT)
    trace = trace_round(main, draft, context, 4, SamplingSettings(), np.random.default_rng(0), 1)
    assert trace.greedy and all(check.u is None for check in trace.checks)
    assert trace.residual is None
    for proposal, check in zip(trace.proposals, trace.checks, strict=False):
        best = max(proposal.candidates, key=lambda c: c.p)
        assert check.accepted == (best.token_id == proposal.token_id)
        assert proposal.q == max(c.q for c in proposal.candidates)  # greedy drafts its argmax


def test_steps_reveal_a_round_stage_by_stage():
    main, draft = toy_pair()
    walkthrough = Walkthrough(main.tokenize(PROMPT), 4, teacher(seed=1))
    walkthrough.step(main, draft)  # reads the prompt, shows round 1's draft
    first = walkthrough.current
    assert first.number == 1 and walkthrough.stage == 0
    nothing_judged = walkthrough.counts()  # no "alpha 0.0%, expected 1.00" before a verdict
    assert nothing_judged["judged"] == 0 and "acceptance_rate" not in nothing_judged
    assert "expected_per_round" not in nothing_judged
    assert [e.round for e in walkthrough.visible_events] == [0]
    for stage in range(1, len(first.stages)):
        assert not walkthrough.round_shown
        walkthrough.step(main, draft)
        assert walkthrough.stage == stage and walkthrough.current is first
    assert walkthrough.round_shown
    assert [e.round for e in walkthrough.visible_events][1:] == [1] * len(first.emitted())
    assert walkthrough.counts()["rounds"] == 1
    walkthrough.step(main, draft)
    assert walkthrough.current.number == 2 and walkthrough.stage == 0
    counts = walkthrough.counts()  # round 2's draft is on show, none of it judged yet
    assert counts["rounds"] == 2 and counts["judged"] == len(first.checks)
    walkthrough.finish_round(main, draft)
    assert walkthrough.round_shown and walkthrough.current.number == 2


def test_the_last_token_is_a_plain_step_and_then_nothing_moves():
    main, draft = toy_pair()
    walkthrough = walk(main, draft, main.tokenize(PROMPT), k=4, seed=0, max_tokens=2)
    assert len(walkthrough.events) == 2 and walkthrough.stop_reason == "maxPredictedTokensReached"
    assert walkthrough.current.proposals == [] and walkthrough.current.stages == [
        "draft",
        "score",
        "bonus",
    ]
    walkthrough.step(main, draft)
    assert len(walkthrough.rounds) == 1


def test_describe_tells_the_round_in_words():
    main, draft = toy_pair()
    context = main.tokenize(PROMPT)
    trace = trace_round(main, draft, context, 4, SAMPLING, np.random.default_rng(1), 1)
    text = trace.describe()
    assert text.startswith("round 1: the draft proposed 4 tokens")
    assert "min(1, p/q)" in text and "u = " in text
    assert ("residual" in text) == trace.rejected
    assert set(trace.to_dict()) >= {"proposals", "checks", "residual", "stages", "next_token"}


def test_settings_out_of_range_are_refused():
    with pytest.raises(ValueError, match="k .* at least 1"):
        Walkthrough([1, 2], k=0)
    with pytest.raises(ValueError, match="max_tokens"):
        teacher(max_tokens=0)


@pytest.mark.real
def test_the_real_pair_walks_as_the_loop_runs(qwen_session):
    """A few greedy rounds on the Qwen pair: the loop's tokens, each round's p and q real."""
    prompt = "Write a quicksort algorithm in Python. Write code only."
    qwen_session.reset()
    loop = qwen_session.generate(prompt, max_tokens=10, draft_tokens=3)
    qwen_session.reset()
    tokens = qwen_session.prompt_tokens(prompt)
    walkthrough = walk(
        qwen_session.main, qwen_session.draft, tokens, k=3, temperature=0.0, max_tokens=10
    )
    assert [e.token_id for e in walkthrough.events] == loop.token_ids
    first = walkthrough.rounds[0]
    assert len(first.proposals) == 3 and all(0 < p.q <= 1 for p in first.proposals)
    assert first.proposals[0].candidates[0].text.strip()


def end_pair() -> tuple[ScriptedEngine, ScriptedEngine]:
    """Both models say "a" then "b" then ⟨end⟩: the draft drafts ⟨end⟩ and the main model,
    agreeing exactly (min(1, p/q) = 1), accepts it whatever u is drawn."""
    script = {ord("a"): ord("b"), ord("b"): END}
    return ScriptedEngine(script, name="main"), ScriptedEngine(script, name="draft")


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_nothing_is_drawn_after_an_accepted_end(temperature):
    main, draft = end_pair()
    walkthrough = Walkthrough(main.tokenize("a"), 4, teacher(temperature=temperature))
    walkthrough.finish_round(main, draft)
    trace = walkthrough.current
    assert trace.proposals[0].token_id == END and trace.checks[0].accepted
    assert len(trace.checks) == 1 and trace.ended and trace.next_token is None
    assert trace.stages == ["draft", "score", "check", "end"]
    assert [token for token, *_ in trace.emitted()] == [END]
    assert "end of generation" in trace.describe() and "bonus" not in trace.describe()
    assert [e.token_id for e in walkthrough.visible_events] == [ord("b"), END]
    assert walkthrough.done and walkthrough.stop_reason == "eosFound"


def test_a_correction_shows_the_residual_probability_it_was_drawn_with():
    """Not p: under sampling a correction is drawn from normalize(max(0, p - q))."""
    for seed in range(50):
        main, draft = toy_pair()
        walkthrough = Walkthrough(main.tokenize(PROMPT), 4, teacher(seed=seed))
        walkthrough.finish_round(main, draft)
        trace = walkthrough.current
        bars = {bar.token_id: bar.prob for bar in trace.residual or []}
        if trace.rejected and trace.next_token.token_id in bars:
            break
    else:
        pytest.fail("no seed in 50 gave a correction among the residual's top tokens")
    assert trace.drawn_with == pytest.approx(bars[trace.next_token.token_id])
    assert trace.drawn_with != pytest.approx(trace.next_token.p)
    assert f"residual {prob(trace.drawn_with)}" in trace.describe()


def test_the_counts_match_the_marks_on_show():
    main, draft = toy_pair()
    walkthrough = Walkthrough(main.tokenize(PROMPT), 4, teacher(seed=1))
    for _ in range(20):
        walkthrough.step(main, draft)
        trace, stage = walkthrough.current, walkthrough.stage
        marks = trace.checks[: trace.stages[: stage + 1].count("check")]
        before = walkthrough.rounds[:-1]
        counts = walkthrough.counts()
        accepted = sum(t.n_accepted for t in before) + sum(c.accepted for c in marks)
        judged = sum(len(t.checks) for t in before) + len(marks)
        assert (counts["accepted"], counts["judged"]) == (accepted, judged)
        assert counts["rejected"] == judged - accepted


def test_expected_tokens_per_round():
    assert expected_tokens_per_round(0.0, 4) == 1.0
    assert expected_tokens_per_round(1.0, 4) == 5.0
    assert expected_tokens_per_round(0.5, 2) == pytest.approx(1 + 0.5 + 0.25)


def test_small_probabilities_keep_their_digits():
    assert prob(0.2904) == "0.290" and prob(0.0012) == "0.0012" and prob(0.0) == "0.000"


def test_back_retraces_the_stages_and_forward_shows_the_same_draws():
    main, draft = toy_pair()
    walkthrough = Walkthrough(main.tokenize(PROMPT), 3, teacher(seed=2, max_tokens=20))

    def view() -> tuple:
        trace = walkthrough.current
        shown = [e.token_id for e in walkthrough.visible_events]
        return trace.number, walkthrough.stage, trace, shown, walkthrough.counts()

    walkthrough.step(main, draft)
    assert not walkthrough.can_go_back
    forward = [view()]
    while not walkthrough.done:
        walkthrough.step(main, draft)
        forward.append(view())
    assert forward[-1][0] >= 3  # several rounds to go back through
    backward = [view()]
    while walkthrough.can_go_back:
        walkthrough.back()
        backward.append(view())
    assert backward == forward[::-1]
    walkthrough.back()  # at round 1's draft: stays
    assert view() == forward[0]
    again = [view()]
    while not walkthrough.done:
        walkthrough.step(main, draft)
        again.append(view())
    assert again == forward and len(walkthrough.rounds) == forward[-1][0]
