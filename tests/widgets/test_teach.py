"""The teaching widget's Python side: its state, its buttons, Play, errors in words, and a
pair held through the EngineManager (the tiny GGUF models)."""

from __future__ import annotations

import threading

import pytest
from traitlets import TraitError

from specdec_jupyter.errors import EngineBusyError, SpecDecError
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.sessions.pair import Pair
from specdec_jupyter.widgets import TeachWidget, colours
from tests.support import ROOT


def click(widget: TeachWidget, kind: str, **content) -> None:
    """What the browser sends on a click; waits for the worker to finish it (except Play,
    which keeps the worker busy until it ends)."""
    widget._handle_custom_msg({"type": kind, **content}, [])
    if kind != "play":
        widget._worker.submit(lambda: None).result(timeout=30)


@pytest.fixture
def toy() -> TeachWidget:
    return TeachWidget(engine="toy", k=4, seed=1, max_tokens=24)


def test_it_opens_on_the_first_rounds_draft(toy):
    assert (toy.engine, toy.main_model, toy.draft_model) == ("toy", "toy-trigram", "toy-bigram")
    assert toy.settings == {
        "prompt": "when the draft model",
        "k": 4,
        "max_tokens": 24,
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "min_p": 0.0,
        "seed": 1,
    }
    assert [field["key"] for field in toy.setting_fields] == list(toy.settings)
    assert toy.trace["number"] == 1 and toy.stage == 0
    assert toy.trace["stages"][:2] == ["draft", "score"] and len(toy.trace["proposals"]) == 4
    assert [token["round"] for token in toy.tokens] == [0]  # the prompt's own token
    assert toy.status["state"] == "idle" and toy.stop_reason == "" and not toy.playing
    assert repr(toy).endswith("seed=1, round 1, stage 1/" + str(len(toy.trace["stages"])) + ")")
    assert "k=4, max_tokens=24, temperature=1.0" in repr(toy)


def test_step_and_finish_round_walk_the_stages(toy):
    stages = toy.trace["stages"]
    toy.step()
    assert toy.stage == 1 and len(toy.tokens) == 1
    toy.finish_round()
    assert toy.stage == len(stages) - 1
    assert len(toy.tokens) == 1 + toy.trace["n_accepted"] + 1
    assert toy.counts["rounds"] == 1
    toy.step()
    assert toy.trace["number"] == 2 and toy.stage == 0


def test_the_buttons_in_the_browser_do_the_same(toy):
    click(toy, "step")
    assert toy.stage == 1
    click(toy, "finish_round")
    assert toy.stage == len(toy.trace["stages"]) - 1
    click(toy, "reset", settings={"k": 2, "temperature": 0, "seed": 5, "prompt": "the main model"})
    assert toy.settings | {"k": 2, "temperature": 0.0, "seed": 5, "prompt": "the main model"} == (
        toy.settings
    )
    assert toy.trace["number"] == 1 and toy.trace["greedy"] and len(toy.trace["proposals"]) == 2


def test_back_in_the_browser_shows_the_stage_before(toy):
    assert not toy.can_go_back
    click(toy, "finish_round")
    click(toy, "step")
    second = (toy.trace, toy.tokens, toy.counts)
    click(toy, "back")
    assert toy.trace["number"] == 1 and toy.stage == len(toy.trace["stages"]) - 1
    assert toy.can_go_back and toy.counts["rounds"] == 1
    click(toy, "step")
    assert (toy.trace, toy.tokens, toy.counts) == second  # the same draws, not new ones


def test_play_speed_is_an_interval_of_0_or_more(toy):
    toy.interval = 0.25
    assert toy.interval == 0.25
    with pytest.raises(TraitError, match="interval .* must be 0 or more"):
        toy.interval = -1


def test_the_same_seed_gives_the_same_rounds(toy):
    toy.finish_round()
    first = (toy.trace, toy.tokens)
    toy.reset()
    toy.finish_round()
    assert (toy.trace, toy.tokens) == first
    toy.reset(seed=2)
    toy.finish_round()
    assert (toy.trace, toy.tokens) != first


def test_play_runs_to_the_end_and_pause_stops_it():
    widget = TeachWidget(engine="toy", max_tokens=12, interval=0.0)
    stopped = threading.Event()
    widget.observe(lambda change: change["new"] or stopped.set(), "playing")
    widget.play()
    assert stopped.wait(30), "Play never reached the end"
    assert widget.stop_reason != "" and not widget.playing and widget.status["state"] == "done"
    assert len(widget.tokens) == 12 or widget.stop_reason == "eosFound"
    words = {"maxPredictedTokensReached": "token limit", "eosFound": "end of text"}
    assert widget.counts["finished"] == words[widget.stop_reason]  # not the raw camelCase

    slow = TeachWidget(engine="toy", max_tokens=64, interval=30.0)
    click(slow, "play")
    assert slow.playing
    click(slow, "pause")
    assert not slow.playing and slow.stop_reason == ""


def test_bad_settings_from_the_browser_are_errors_in_words(toy):
    click(toy, "reset", settings={"k": 0})
    assert toy.status["state"] == "error" and "at least 1" in toy.status["message"]
    assert toy.settings["k"] == 4  # nothing changed
    with pytest.raises(TypeError, match="unknown keyword arguments kk"):
        toy.reset(kk=3)
    with pytest.raises(TypeError, match="unknown keyword arguments temprature"):
        TeachWidget(engine="toy", temprature=0.5)


def test_a_pair_through_the_manager(tiny_paths, tmp_path, monkeypatch):
    """The llama.cpp path: the manager holds the pair for each step, and refuses while a
    generation uses it."""
    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(tmp_path / "cache"))
    main, draft = (str(path) for path in tiny_paths)
    manager = EngineManager(n_ctx=256, n_threads=1, parallel=1)
    widget = TeachWidget(main, draft, manager=manager, prompt="hello", k=3, max_tokens=16)
    assert (widget.main_model, widget.draft_model) == ("tiny-main.gguf", "tiny-draft.gguf")
    widget.finish_round()
    assert widget.trace["proposals"] and len(widget.tokens) > 1
    with manager.hold(Pair(main, draft, options=manager.options.settled(True))):
        with pytest.raises(EngineBusyError, match="is generating"):
            widget.step()
        click(widget, "step")
        assert widget.status["state"] == "error" and "is generating" in widget.status["message"]
    click(widget, "step")
    assert widget.status["state"] in ("idle", "done") and widget.trace["number"] == 2
    manager.close()


def test_no_draft_to_teach_with_is_said_in_words(tiny_paths, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SPECDEC_MODELS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("SPECDEC_MODEL_PATH", "")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub"))
    with pytest.raises(SpecDecError, match="no draft model can draft for tiny-main.gguf"):
        TeachWidget(str(tiny_paths[0]), manager=EngineManager(n_ctx=256, n_threads=1))


def test_p_and_q_have_one_colour_each_in_the_widget_and_the_plots():
    css = (ROOT / "js" / "src" / "teach.css").read_text()
    for name, hex_colour in [("p", colours.P), ("q", colours.Q), ("r", colours.RESIDUAL)]:
        rgb = ", ".join(str(int(hex_colour[i : i + 2], 16)) for i in (1, 3, 5))
        assert f"--specdec-{name}: {rgb};" in css


def test_a_malformed_reset_message_is_a_status_not_a_traceback():
    """Issue 23 T7: `settings` that is not an object raised in the kernel."""
    widget = TeachWidget(engine="toy")
    widget._handle_custom_msg({"type": "reset", "settings": ["k", 3]}, [])
    assert widget.status["message"].startswith("a message from the page was malformed")
