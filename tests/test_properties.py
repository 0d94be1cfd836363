"""Properties over sampling settings and stop strings on the toy pair: nothing but the
package's own errors, valid JSON from the CLI, stats that add up, tokens that join to the text."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

from hypothesis import given, settings
from hypothesis import strategies as st

from specdec_jupyter import cli, load
from specdec_jupyter.errors import SpecDecError

SESSION = load("toy-trigram", "toy-bigram", progress=False)
BOUNDED = settings(max_examples=40, deadline=None)

temperatures = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.8))
top_ps = st.one_of(st.floats(-0.5, 1.5), st.just(1.0), st.just(float("nan")))
top_ks = st.integers(-2, 6)
max_tokens = st.integers(-1, 40)
seeds = st.one_of(st.none(), st.integers(-3, 2**70))
draft_tokens = st.one_of(st.just("auto"), st.integers(-1, 8))
stops = st.lists(st.text(alphabet=" .,abehmnorstw", max_size=4), max_size=3)


def _no_stop_inside(text: str, stop: list[str]) -> bool:
    return not any(s and s in text for s in stop)


@BOUNDED
@given(temperatures, top_ps, top_ks, max_tokens, seeds, draft_tokens, stops)
def test_any_settings_give_a_coherent_result_or_one_settings_error(
    temperature, top_p, top_k, max_tokens, seed, k, stop
):
    try:
        result = SESSION.generate(
            "when the draft model", raw=True, temperature=temperature, top_p=top_p,
            top_k=top_k, max_tokens=max_tokens, seed=seed, draft_tokens=k, stop=stop,
        )  # fmt: skip
    except SpecDecError as error:
        assert "\n" not in str(error)
        return
    stats, events = result.stats, result.events
    assert "".join(e.text for e in events) == result.text
    assert stats.predicted_tokens_count == len(events) <= max_tokens
    assert stats.accepted_draft_tokens_count == sum(e.source == "draft" for e in events)
    assert stats.total_draft_tokens_count == (
        stats.accepted_draft_tokens_count
        + stats.rejected_draft_tokens_count
        + stats.ignored_draft_tokens_count
    )
    assert _no_stop_inside(result.text, stop)


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


@BOUNDED
@given(temperatures, top_ps, max_tokens, seeds, stops)
def test_the_cli_prints_json_or_one_line(temperature, top_p, max_tokens, seed, stop):
    argv = ["generate", "--engine", "toy", "--prompt", "the main model", "--raw", "--json",
            f"--temperature={temperature}", f"--top-p={top_p}", f"--max-tokens={max_tokens}",
            *[f"--stop={s}" for s in stop]]  # fmt: skip
    if seed is not None:
        argv.append(f"--seed={seed}")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(argv)
    if code == 0:
        printed = json.loads(out.getvalue(), parse_constant=_refuse_constant)
        assert "".join(t["text"] for t in printed["tokens"]) == printed["text"]
    else:
        assert code == 2 and out.getvalue() == ""
        assert err.getvalue().startswith("error: ") and err.getvalue().count("\n") == 1
