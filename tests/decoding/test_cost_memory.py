"""Call costs remembered per model file and machine, and an `auto` policy that starts warm."""

from __future__ import annotations

import os

import numpy as np
import pytest

from specdec_jupyter import load
from specdec_jupyter.decoding import cost_memory
from specdec_jupyter.decoding.cost_memory import CostMemory, CostStore
from specdec_jupyter.decoding.drafters import Draft, DraftOption, ModelDrafter
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.decoding.policy import (
    UNCONFIRMED_DISCOUNT,
    AcceptanceByPosition,
    BatchCosts,
    DraftPolicy,
    Measured,
    best_draft_length,
)
from specdec_jupyter.decoding.round import RoundOutcome, VerifiedToken
from specdec_jupyter.decoding.verify import Verification
from specdec_jupyter.engines.toy import toy_pair
from specdec_jupyter.models.json_file import CacheNote
from specdec_jupyter.settings import RunSettings
from tests.support.recording import drain
from tests.support.tiny_models import make_tiny_pair

CALLS = {1: 0.062, 2: 0.091, 3: 0.131, 4: 0.142, 5: 0.172, 6: 0.198}  # models.md, 1.5B


@pytest.fixture
def pair(tmp_path):
    """A tiny pair of our own, so a test may touch its files."""
    session = load(*make_tiny_pair(tmp_path / "models"), n_ctx=256, n_threads=1, progress=False)
    yield session
    session.close()


def measured(draft_name: str) -> Measured:
    return Measured(dict(CALLS), {draft_name: 0.023})


def test_costs_are_written_and_read_back_by_a_new_memory(pair, tmp_path):
    store = CostStore(tmp_path / "cache" / "call-costs.json")
    CostMemory(pair.main, pair.draft, store).remember(measured(pair.draft.name))
    start = CostMemory(pair.main, pair.draft, store).start()
    assert start.batch_seconds == CALLS
    assert start.draft_seconds == {pair.draft.name: 0.023}
    assert start.acceptance == {}  # acceptance is the process's only
    plain_only = CostMemory(pair.main, None, store).start()  # main costs serve any draft
    assert plain_only.batch_seconds == CALLS and plain_only.draft_seconds == {}


def test_a_changed_model_file_forgets_its_costs(pair, tmp_path):
    store = CostStore(tmp_path / "cache" / "call-costs.json")
    CostMemory(pair.main, pair.draft, store).remember(measured(pair.draft.name))
    stat = pair.main.path.stat()
    os.utime(pair.main.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    start = CostMemory(pair.main, pair.draft, store).start()
    assert start.batch_seconds == {}  # the main model's file changed
    assert start.draft_seconds == {pair.draft.name: 0.023}  # the draft's did not


def test_another_machine_does_not_use_these_costs(pair, tmp_path, monkeypatch):
    store = CostStore(tmp_path / "cache" / "call-costs.json")
    CostMemory(pair.main, pair.draft, store).remember(measured(pair.draft.name))
    other = {**cost_memory.machine_identity(), "cpu": "another CPU"}
    monkeypatch.setattr(cost_memory, "machine_identity", lambda: other)
    start = CostMemory(pair.main, pair.draft, store).start()
    assert start.batch_seconds == {} and start.draft_seconds == {}


def test_an_unwritable_cache_is_a_note_and_the_session_still_remembers(pair, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    memory = CostMemory(pair.main, pair.draft, CostStore(blocker / "call-costs.json"))
    with pytest.warns(CacheNote, match="SPECDEC_CACHE_DIR"):
        memory.remember(measured(pair.draft.name))
    assert memory.start().batch_seconds == CALLS


def test_a_run_leaves_its_costs_and_acceptance_for_the_next(pair, tmp_path):
    store = CostStore(tmp_path / "cache" / "call-costs.json")
    memory = CostMemory(pair.main, pair.draft, store)
    prompt = pair.main.tokenize("hello world")
    settings = RunSettings(max_tokens=30)
    drain(speculative_decode(pair.main, ModelDrafter(pair.draft), prompt, settings, memory=memory))
    after = memory.start()
    assert 1 in after.batch_seconds and pair.draft.name in after.acceptance
    assert CostMemory(pair.main, pair.draft, store).start().batch_seconds == after.batch_seconds


def test_toy_engines_are_remembered_in_the_process_only(tmp_path):
    main, draft = toy_pair()
    store = CostStore(tmp_path / "call-costs.json")
    memory = CostMemory(main, draft, store)
    memory.remember(measured(draft.name))
    assert memory.start().batch_seconds == CALLS
    assert not store.path.exists()


def model_option(name: str) -> DraftOption:
    def propose(*_args):
        raise AssertionError("choosing must not draft")

    return DraftOption(name, propose)


def sure_acceptance(rounds: int = 20) -> AcceptanceByPosition:
    acceptance = AcceptanceByPosition()
    for _ in range(rounds):
        acceptance.record_round(5, 5)
    return acceptance


def test_a_cold_policy_first_measures_a_plain_step():
    assert DraftPolicy().choose([model_option("draft")], 5) == (None, 0)


def test_a_warm_policy_first_round_uses_remembered_costs():
    """GPU-like costs (a call on six tokens costs little more than one) and a draft that
    was always right last run: the first round drafts the k those costs make best."""
    calls = {b: 0.020 + 0.001 * b for b in range(1, 7)}
    start = Measured(calls, {"draft": 0.002}, {"draft": sure_acceptance()})
    policy = DraftPolicy(max_draft=5, start=start)
    option = model_option("draft")
    acceptance = policy.sources["draft"].acceptance.estimates(5)
    best_k, _ = best_draft_length(acceptance, 0.002, [calls[k + 1] for k in range(6)])
    assert best_k == 5
    assert policy.choose([option], 5) == (option, best_k)


def test_a_warm_policy_times_a_draft_again_before_believing_it_does_not_pay():
    """The 0.5B draft at 23 ms a token beside the 1.5B's call costs, right half the time:
    drafting does not pay. A warm policy times the draft once (two tokens) before it
    believes that, since the remembered cost may come from a busy moment; timed, it stops."""
    acceptance = AcceptanceByPosition()
    for i in range(20):
        acceptance.record_round(1, i % 2)
    start = Measured(dict(CALLS), {"draft": 0.023}, {"draft": acceptance})
    policy = DraftPolicy(max_draft=5, start=start)
    option = model_option("draft")
    assert policy.choose([option], 5) == (option, 2)
    policy.record(probe_outcome(2, n_accepted=1, draft_seconds=2 * 0.023, call=CALLS[3]))
    assert [policy.choose([option], 5) for _ in range(3)] == [(None, 0)] * 3


def probe_outcome(k: int, n_accepted: int, draft_seconds: float, call: float) -> RoundOutcome:
    """A round that drafted k tokens from "draft" and kept n_accepted of them."""
    draft = Draft(list(range(k)), [1.0] * k, source="draft", caught_up=1)
    acceptance = [1.0] * n_accepted + [0.0] * (min(n_accepted + 1, k) - n_accepted)
    emitted = tuple(VerifiedToken(t, "main", 1.0) for t in range(n_accepted + 1))
    verification = Verification(n_accepted, n_accepted, acceptance)
    return RoundOutcome(
        draft, verification, emitted, np.zeros((k + 1, 0)), None, draft_seconds, call
    )


def test_costs_remembered_under_load_are_not_trusted():
    """Costs from a run that shared the CPU (a call on 2 tokens at 8 s beside 59 ms on one, a
    draft token at 1.5 s) would keep auto from ever drafting, and so from measuring them
    again: a warm policy drops them and measures afresh, as a cold one does."""
    start = Measured(
        {1: 0.059, 2: 8.2, 3: 4.3, 4: 0.15}, {"draft": 1.5}, {"draft": sure_acceptance()}
    )
    policy = DraftPolicy(max_draft=5, start=start)
    assert policy.verify.known().keys() == {1, 4}
    assert policy.sources["draft"].draft_cost.value is None


def test_remembered_costs_take_this_runs_scale_and_yield_to_its_timings():
    """Costs remembered on a quieter machine give the curve's shape; the first call timed
    now sets its scale, and a size timed now replaces its remembered cost outright."""
    costs = BatchCosts()
    for size, seconds in {1: 0.060, 2: 0.090, 4: 0.140}.items():
        costs.remember(size, seconds)
    costs.record(1, 0.120)  # twice as busy as then
    known = costs.known()
    assert known[1] == 0.120
    assert known[2] == pytest.approx(0.120 + (0.180 - 0.120) * (1 - UNCONFIRMED_DISCOUNT))
    costs.record(2, 0.200)
    assert costs.known()[2] == 0.200  # timed now: no discount, no remembered sample
    assert costs.medians() == {1: 0.120, 2: 0.200}  # what this run measured, to remember


def test_a_remembered_batch_too_dear_for_its_size_is_tried_again():
    """A 4-token call remembered at 2.6 single calls (a busy moment; 2.3 is this machine's)
    with lookup drafts right 85% of the time: at the remembered cost drafting 3 would
    just not pay, so without the discount auto would never draft 3 and never see that it
    does."""
    remembered = {1: 0.062, 2: 0.091, 3: 0.131, 4: 0.062 * 2.6}
    acceptance = [0.85, 0.85, 0.85]
    verify = [remembered[k + 1] for k in range(4)]
    assert best_draft_length(acceptance, 0.0, verify)[0] != 3
    costs = BatchCosts()
    for size, seconds in remembered.items():
        costs.remember(size, seconds)
    assert best_draft_length(acceptance, 0.0, [costs.estimate(k + 1) for k in range(4)])[0] == 3
