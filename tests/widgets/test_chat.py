"""The chat widget's Python side: its state, the messages it exchanges with the browser,
and generations driven through it on the toy engine and the tiny GGUF models."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from specdec_jupyter.decoding.events import TokenEvent
from specdec_jupyter.engines.tap import EngineTap
from specdec_jupyter.engines.toy import ToyEngine
from specdec_jupyter.models.names import short_name
from specdec_jupyter.sessions import plain_speeds
from specdec_jupyter.sessions.manager import EngineManager, open_model
from specdec_jupyter.widgets import ChatWidget
from specdec_jupyter.widgets.batching import MAX_UPDATES_PER_SECOND, TokenBatcher
from tests.support.chat import settled
from tests.support.tiny_models import write_tiny_gguf


class Browser:
    """Records what the widget sends to the front end, and sends what a user's clicks would."""

    def __init__(self, widget: ChatWidget):
        self.widget = widget
        self.received: list[dict] = []
        widget.send = lambda content, buffers=None: self.received.append(content)

    def click(self, kind: str, **content) -> None:
        self.widget._handle_custom_msg({"type": kind, **content}, [])

    def streamed_tokens(self) -> list[dict]:
        return [token for m in self.received if m["type"] == "tokens" for token in m["tokens"]]


def hold_toy_at(monkeypatch, evaluation: int) -> tuple[threading.Event, threading.Event]:
    """Pause the toy engine at its n-th evaluation until released.

    The toy finishes a reply faster than a test reaches its next line, so a test that acts
    while a reply runs holds it: `reached` is set when the pause begins.
    """
    reached, release = threading.Event(), threading.Event()
    evaluate, calls = ToyEngine.evaluate, itertools.count(1)

    def held(engine: ToyEngine, tokens, n_logits: int):
        if next(calls) >= evaluation:
            reached.set()
            release.wait(30)
        return evaluate(engine, tokens, n_logits)

    monkeypatch.setattr(ToyEngine, "evaluate", held)
    return reached, release


@pytest.fixture
def toy() -> ChatWidget:
    plain_speeds.forget()  # no speed remembered from another test
    widget = ChatWidget(engine="toy", max_tokens=64)
    settled(widget)
    return widget


def draft_every_round(widget: ChatWidget) -> None:
    """k fixed, drafts from the draft model alone: "auto" may rightly find that drafting does
    not pay on the toy engines (their calls cost alike whatever their size) once it remembers
    their costs from earlier tests."""
    widget.settings = {**widget.settings, "draft_tokens": 2, "draft_mode": "model"}


class HistorySpy:
    """Records the conversation each run of the widget's service is given, then runs it."""

    def __init__(self, widget: ChatWidget):
        self.histories: list[list[dict]] = []
        self.continued: list[bool] = []
        start = widget._service.start

        def recorded(history, *args, **options):
            self.histories.append(history)
            self.continued.append(options.get("continue_", False))
            return start(history, *args, **options)

        widget._service.start = recorded


@pytest.fixture
def model_folder(tiny_paths, tmp_path, monkeypatch) -> dict[str, Path]:
    """The tiny pair plus a model of another vocabulary, as the only models on the machine."""
    folder = tmp_path / "models"
    folder.mkdir()
    models = {}
    for path in tiny_paths:
        models[path.stem] = folder / path.name
        models[path.stem].symlink_to(path)
    models["other"] = write_tiny_gguf(folder / "other.gguf", vocab="other")
    for variable, value in {
        "SPECDEC_MODELS_DIR": folder,
        "SPECDEC_CONFIG_DIR": tmp_path / "config",
        "SPECDEC_CACHE_DIR": tmp_path / "cache",
        "HF_HUB_CACHE": tmp_path / "no-hub",
        "SPECDEC_MODEL_PATH": "",
    }.items():
        monkeypatch.setenv(variable, str(value))
    return models


@pytest.fixture
def tiny_chat(model_folder) -> ChatWidget:
    widget = ChatWidget(
        str(model_folder["tiny-main"]),
        draft=str(model_folder["tiny-draft"]),
        manager=EngineManager(n_ctx=256, n_threads=1),
        max_tokens=24,
        draft_tokens=3,
    )
    assert settled(widget)["state"] == "idle", widget.status
    return widget


def test_toy_state_for_the_front_end(toy):
    assert [e["name"] for e in toy.engines] == ["llama.cpp", "mlx", "toy"]
    assert all(e["available"] for e in toy.engines) and toy.engine == "toy"
    assert "on the CPU here, without acceleration" in toy.engines[1]["note"]
    assert [m["key"] for m in toy.models] == ["toy-trigram", "toy-bigram"]
    assert toy.main_model == "toy-trigram"
    assert [d["key"] for d in toy.drafts] == ["toy-bigram"] and toy.incompatible == []
    assert toy.draft_model == "toy-bigram"
    assert toy.settings == {
        "max_tokens": 64,
        "temperature": 0.0,
        "top_k": 0,
        "top_p": 1.0,
        "min_p": 0.0,
        "seed": None,
        "stop": [],
        "draft_tokens": "auto",
        "draft_mode": "hybrid",
        "use_draft": True,
        "system": None,
        "compare": False,
        "n_ctx": 4096,
        "n_threads": None,
        "gpu_layers": None,
        "draft_gpu_layers": None,
        "rpc": [],
        "draft_rpc": [],
        "exact": None,
        "parallel": None,
    }
    assert [field["key"] for field in toy.setting_fields] == list(toy.settings)
    assert toy.messages == [] and toy.status["state"] == "idle"
    assert len(toy._chat_id) == 32
    assert (
        repr(toy) == "ChatWidget(engine='toy', main='toy-trigram', draft='toy-bigram', 0 messages)"
    )
    assert [m["title"] for m in toy.models] == ["numpy trigram model", "numpy bigram model"]


def test_unknown_settings_are_refused():
    with pytest.raises(TypeError, match="unknown keyword arguments temprature"):
        ChatWidget(engine="toy", temprature=0.5)


def test_send_streams_batches_then_records_the_reply_with_provenance(toy):
    browser = Browser(toy)
    browser.click("send", text="the cat sat on the")
    reply = toy.wait(30)
    assert [m["role"] for m in toy.messages] == ["user", "assistant"]
    assert toy.messages[0]["content"] == "the cat sat on the"
    assert browser.received[0] == {"type": "reply_start"}
    assert browser.streamed_tokens() == reply["tokens"]
    assert reply["content"] == "".join(t["text"] for t in reply["tokens"])
    assert {t["source"] for t in reply["tokens"]} <= {"draft", "main"}
    assert set(reply["tokens"][0]) == {
        "token_id",
        "text",
        "source",
        "round",
        "p_main",
        "q_draft",
        "acceptance",
        "kind",
        "rejected",
        "drafted_as",
    }
    assert reply["tokens"][0]["kind"] == "first"
    assert reply["main_model"].startswith("toy-trigram")
    assert reply["draft_model"].startswith("toy-bigram")
    assert reply["settings"]["max_tokens"] == 64
    assert reply["stats"]["predicted_tokens_count"] == len(reply["tokens"])
    labels = dict(reply["stats_rows"])
    assert labels["draft model"] == "toy-bigram + prompt-lookup" and "acceptance rate" in labels
    assert toy.status["state"] == "idle"


def test_the_stream_is_batched_to_at_most_30_updates_a_second():
    sent: list[list[dict]] = []
    batcher = TokenBatcher(sent.append)
    started = time.monotonic()
    events = [TokenEvent(i, f"t{i}", "main", i) for i in range(2000)]
    for event in events:
        batcher.add(event)
    batcher.flush()
    elapsed = time.monotonic() - started
    assert [token["token_id"] for batch in sent for token in batch] == list(range(2000))
    assert len(sent) <= elapsed * MAX_UPDATES_PER_SECOND + 2


def test_tokens_left_after_a_batch_are_sent_by_the_timer():
    sent: list[list[dict]] = []
    timer_sent = threading.Event()
    batcher = TokenBatcher(lambda batch: (sent.append(batch), len(sent) == 2 and timer_sent.set()),
                           rate=0.5)  # fmt: skip
    batcher.add(TokenEvent(1, "a", "main", 0))
    batcher.add(TokenEvent(2, "b", "draft", 1, 0.9, 0.8, 1.0))  # within 2 s: waits
    assert len(sent) == 1
    assert timer_sent.wait(30), "the timer never sent the waiting token"
    assert [[t["text"] for t in batch] for batch in sent] == [["a"], ["b"]]


def test_regenerate_keeps_the_earlier_reply_as_a_version(toy):
    browser = Browser(toy)
    spy = HistorySpy(toy)
    toy.settings = {**toy.settings, "max_tokens": 3}
    browser.click("send", text="the cat sat on the")
    first = toy.wait(30)
    toy.settings = {**toy.settings, "max_tokens": 6}  # so the versions differ, for sure
    browser.click("regenerate")
    second = toy.wait(30)
    assert [m["role"] for m in toy.messages] == ["user", "assistant"]
    assert second is toy.messages[-1] and second["settings"]["max_tokens"] == 6
    assert len(first["tokens"]) == 3 and len(second["tokens"]) == 6
    assert spy.histories[1] == [{"role": "user", "content": "the cat sat on the"}]  # no old reply
    assert second["version"] == 1 and second["versions"][1] is None
    assert second["versions"][0]["tokens"] == first["tokens"]

    browser.click("show_version", index=1, version=0)
    assert toy.messages[1]["tokens"] == first["tokens"] and toy.messages[1]["version"] == 0
    toy.ask("and the cat")  # the conversation goes on from the version shown
    toy.wait(30)
    assert spy.histories[-1][1]["content"] == first["content"]
    assert len(toy.messages) == 4

    browser.click("show_version", index=1, version=1)  # the other branch: without that turn
    assert [m["role"] for m in toy.messages] == ["user", "assistant"]
    assert toy.messages[1]["tokens"] == second["tokens"]
    browser.click("show_version", index=1, version=0)  # and back: the turn comes back too
    assert [m["content"] for m in toy.messages[2:3]] == ["and the cat"]
    assert len(toy.messages) == 4


def test_a_version_that_does_not_exist_is_refused_in_words(toy):
    toy.ask("the dog")
    toy.wait(30)
    toy.show_version(1, 3)
    assert toy.status["state"] == "error" and "versions 0 to 0" in toy.status["message"]


def test_clear_is_undoable(toy):
    browser = Browser(toy)
    toy.ask("the dog")
    toy.wait(30)
    kept = list(toy.messages)
    browser.click("clear")
    assert toy.messages == [] and toy.undo == "Undo clear (brings back 2 messages)"
    browser.click("undo_last")
    assert toy.messages == kept and toy.undo == ""
    browser.click("clear")
    toy.ask("the cat")  # a new turn: Undo would throw it away, so it is no longer offered
    toy.wait(30)
    assert toy.undo == ""
    browser.click("undo_last")
    assert [m["content"] for m in toy.messages][:1] == ["the cat"]


def test_clear_does_nothing_while_a_reply_runs(toy, monkeypatch):
    toy.ask("the dog")
    toy.wait(30)
    reached, release = hold_toy_at(monkeypatch, evaluation=1)
    toy.ask("the cat")
    assert reached.wait(30)
    toy.clear()
    assert len(toy.messages) == 3 and toy.undo == ""
    assert "Stop it first" in toy.status["message"]
    release.set()
    toy.wait(30)
    assert len(toy.messages) == 4


def test_continue_extends_the_last_reply_with_its_provenance(toy):
    browser = Browser(toy)
    spy = HistorySpy(toy)
    toy.settings = {**toy.settings, "max_tokens": 12}
    toy.ask("the cat sat on the")
    first = toy.wait(30)
    browser.received.clear()
    browser.click("continue")
    longer = toy.wait(30)
    assert spy.continued == [False, True]
    assert spy.histories[1][-1] == {"role": "assistant", "content": first["content"]}
    assert [m["role"] for m in toy.messages] == ["user", "assistant"]
    assert longer["content"].startswith(first["content"]) and len(longer["content"]) > len(
        first["content"]
    )
    assert longer["tokens"][: len(first["tokens"])] == first["tokens"]
    more = longer["tokens"][len(first["tokens"]) :]
    assert min(t["round"] for t in more) > max(t["round"] for t in first["tokens"])
    assert longer["content"] == "".join(t["text"] for t in longer["tokens"])
    # the stats and the rounds are the whole reply's
    stats = longer["stats"]
    assert stats["predicted_tokens_count"] == len(longer["tokens"])
    assert stats["rounds"] == first["stats"]["rounds"] + continuation_rounds(longer, first)
    assert len(longer["rounds"]) == stats["rounds"] == len(stats["draft_lengths"])
    assert sum(r["accepted"] for r in longer["rounds"]) == stats["accepted_draft_tokens_count"]
    assert stats["accepted_draft_tokens_count"] == sum(
        t["source"] == "draft" for t in longer["tokens"]
    )
    assert dict(longer["stats_rows"])["predicted tokens"] == str(len(longer["tokens"]))
    # the live reply starts as the reply it extends, then grows
    assert browser.received[0] == {"type": "reply_start"}
    assert browser.streamed_tokens() == longer["tokens"]


def continuation_rounds(longer: dict, first: dict) -> int:
    """The rounds of the continuation: those of the longer reply's rounds after the first's."""
    return sum(1 for r in longer["rounds"] if r["round"] > max(t["round"] for t in first["tokens"]))


def test_continue_keeps_the_versions_of_the_reply(toy):
    toy.ask("the dog")
    toy.wait(30)
    toy.regenerate()
    toy.wait(30)
    toy.continue_reply()
    reply = toy.wait(30)
    assert reply["version"] == 1 and len(reply["versions"]) == 2


def test_editing_an_earlier_message_asks_again_from_there(toy):
    browser = Browser(toy)
    spy = HistorySpy(toy)
    toy.ask("the dog")
    toy.wait(30)
    toy.ask("the cat")
    toy.wait(30)
    before = list(toy.messages)
    browser.click("edit", index=0, text="the bird")
    toy.wait(30)
    assert [m["role"] for m in toy.messages] == ["user", "assistant"]
    assert toy.messages[0]["content"] == "the bird"
    assert spy.histories[-1] == [{"role": "user", "content": "the bird"}]
    assert toy.undo == "Undo edit (brings back 4 messages)"
    toy.undo_last()
    assert toy.messages == before


def test_only_a_message_of_yours_can_be_edited(toy):
    toy.ask("the dog")
    toy.wait(30)
    toy.edit(1, "a reply rewritten")
    assert toy.status["state"] == "error" and "not one of yours" in toy.status["message"]
    toy.edit(0, "  ")
    assert "cannot be empty" in toy.status["message"]
    assert len(toy.messages) == 2


def test_stop_keeps_what_was_generated(toy, monkeypatch):
    reached, release = hold_toy_at(monkeypatch, evaluation=8)  # a few rounds in
    toy.settings = {**toy.settings, "max_tokens": 100_000}
    toy.ask("the main model")
    assert reached.wait(30)
    toy.stop()
    release.set()
    reply = toy.wait(30)
    assert reply["stats"]["stop_reason"] == "userStopped"
    assert 0 < len(reply["tokens"]) < 100_000
    assert reply["content"] == "".join(t["text"] for t in reply["tokens"])


def test_a_message_sent_while_a_reply_runs_is_queued_not_dropped(toy, monkeypatch):
    _, release = hold_toy_at(monkeypatch, evaluation=1)
    toy.ask("one")
    toy.ask("two")
    assert "Queued" in toy.status["message"]
    release.set()
    toy.wait(30)
    assert [m["role"] for m in toy.messages] == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in toy.messages if m["role"] == "user"] == ["one", "two"]


def test_a_partial_settings_dict_keeps_the_other_defaults(toy):
    toy.settings = {"temperature": 0.5}
    assert toy.settings["max_tokens"] == 512 and toy.settings["use_draft"] is True
    toy.ask("the cat")
    reply = toy.wait(30)
    assert "error" not in reply and reply["content"]


def test_a_setting_out_of_range_is_a_reply_in_words(toy):
    toy.settings = {**toy.settings, "max_tokens": 2.5}
    toy.ask("the cat")
    assert (
        "max_tokens must be an integer >= 1 (at most 2147483647), got 2.5" in toy.wait(30)["error"]
    )


def test_asking_without_a_main_model_says_so():
    chat = ChatWidget("no-such-model", engine="toy", max_tokens=8)
    settled(chat)
    assert chat.main_model == ""
    chat.ask("the cat")
    assert "no main model is chosen" in chat.wait(30)["error"]


def test_no_draft_setting_runs_plain_decoding(toy):
    toy.settings = {**toy.settings, "use_draft": False}
    toy.ask("the cat")
    reply = toy.wait(30)
    assert reply["draft_model"] is None
    assert {t["source"] for t in reply["tokens"]} == {"main"}
    assert "speedup over plain" not in dict(reply["stats_rows"])


def test_a_reply_after_a_plain_one_says_its_speedup_over_plain(toy):
    toy.settings = {**toy.settings, "use_draft": False, "max_tokens": 40}
    toy.ask("the cat sat on the")
    plain = toy.wait(30)
    assert plain["stats"]["predicted_tokens_count"] > plain_speeds.MIN_TOKENS
    toy.settings = {**toy.settings, "use_draft": True}
    toy.ask("the dog")
    reply = toy.wait(30)
    speedup = dict(reply["stats_rows"])["speedup over plain"]
    ratio = reply["stats"]["tokens_per_second"] / plain["stats"]["tokens_per_second"]
    assert speedup.startswith(f"{ratio:.2f}x")
    assert "remembered from a plain run" in speedup


def test_lookup_drafts_without_a_draft_model_and_says_so(toy):
    toy.settings = {**toy.settings, "draft_mode": "lookup", "draft_tokens": 3}
    toy.ask("the cat sat on the mat . the cat sat on the mat . the cat sat on the")
    reply = toy.wait(30)
    assert "error" not in reply, reply.get("error")
    assert reply["draft_model"] == "prompt lookup"
    assert reply["stats"]["draft_model"] == "prompt-lookup"
    drafted = [r for r in reply["rounds"] if r["drafted"]]
    assert drafted and {r["source"] for r in drafted} == {"lookup"}


def test_hybrid_names_both_drafters_and_a_bad_mode_is_refused_in_words(toy):
    toy.settings = {**toy.settings, "draft_mode": "hybrid"}
    toy.ask("the cat sat on the")
    assert toy.wait(30)["draft_model"] == "toy-bigram + prompt lookup"
    toy.settings = {**toy.settings, "draft_mode": "telepathy"}
    toy.ask("the cat")
    assert "draft_mode must be one of" in toy.wait(30)["error"]


def test_each_round_is_summed_up_for_the_strip(toy):
    draft_every_round(toy)
    toy.ask("the cat sat on the")
    reply = toy.wait(30)
    stats, rounds = reply["stats"], reply["rounds"]
    assert [r["round"] for r in rounds] == list(range(1, stats["rounds"] + 1))
    assert [r["drafted"] for r in rounds] == stats["draft_lengths"]
    assert sum(r["accepted"] for r in rounds) == stats["accepted_draft_tokens_count"]
    assert sum(r["emitted"] for r in rounds) == stats["predicted_tokens_count"] - 1  # round 0
    assert {r["source"] for r in rounds if r["drafted"]} == {"model"}
    assert all(r["source"] is None for r in rounds if not r["drafted"])
    assert all(r["accepted"] <= r["drafted"] for r in rounds)


def test_a_chosen_draft_survives_switching_the_main_model_away_and_back(toy):
    assert toy.draft_model == "toy-bigram"  # the remembered default
    toy.draft_model = ""  # the user picks none for the trigram model
    settled(toy)
    toy.main_model = "toy-bigram"
    settled(toy)
    toy.main_model = "toy-trigram"
    assert toy.draft_model == ""  # the user's choice, not the default again
    assert settled(toy)["state"] == "idle"


def test_html_fallback_shows_the_chat_in_the_same_colours(toy):
    draft_every_round(toy)
    toy.ask("the cat sat on the")
    toy.wait(30)
    data, _ = toy._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"] == repr(toy)
    html = data["text/html"]
    assert "the cat sat on the" in html
    assert "34, 197, 94)," in html and "specdec-draft" in html
    assert "acceptance rate" in html
    assert toy.snapshot().data == html


def test_switching_engine_refills_the_selectors(tiny_chat):
    tiny_chat.engine = "toy"
    assert [m["key"] for m in tiny_chat.models] == ["toy-trigram", "toy-bigram"]
    assert tiny_chat.draft_model == "toy-bigram"


def test_tiny_models_drafts_and_reasons(tiny_chat, model_folder):
    keys = {m["key"] for m in tiny_chat.models}
    assert keys == {str(path) for path in model_folder.values()}
    drafts = {d["key"]: d for d in tiny_chat.drafts}
    assert list(drafts) == [str(model_folder["tiny-draft"]), str(model_folder["other"])]
    assert drafts[str(model_folder["tiny-draft"])]["group"] == "same vocabulary"
    other = drafts[str(model_folder["other"])]
    assert other["group"] == "another vocabulary"
    assert other["notes"][0].startswith("another vocabulary (vocabulary sizes 384 vs 600")
    assert tiny_chat.incompatible == []


def test_selectors_show_short_names_with_the_details_in_the_tooltip(tiny_chat, model_folder):
    main = next(m for m in tiny_chat.models if m["key"] == str(model_folder["tiny-main"]))
    assert main["label"] == "tiny-main"
    assert " MB · " in main["title"] and main["title"].endswith(str(model_folder["tiny-main"]))
    assert [d["label"] for d in tiny_chat.drafts] == ["tiny-draft", "other"]
    other = tiny_chat.drafts[1]
    assert other["title"] and other["notes"]
    catalog_file = Path("/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    assert short_name(catalog_file) == "qwen2.5-coder-1.5b"


def test_loading_shows_which_model_and_how_far_in_the_status(tiny_chat):
    statuses, loaded = [], threading.Event()

    def seen(change: dict) -> None:
        statuses.append(change["new"])
        if change["new"]["state"] != "loading":
            loaded.set()

    tiny_chat.observe(seen, "status")
    # other GPU-layer settings are other load options: the pair loads again
    tiny_chat.settings = {**tiny_chat.settings, "gpu_layers": 0, "draft_gpu_layers": 0}
    assert loaded.wait(60) and statuses[-1]["state"] == "idle", statuses[-1]
    for name in ("tiny-main", "tiny-draft"):
        steps = [s for s in statuses if s["message"].startswith(f"loading {name}: ")]
        fractions = [s["progress"] for s in steps]
        assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
        assert steps[-1]["message"] == f"loading {name}: 100%"


def test_changing_the_main_model_refreshes_the_drafts(tiny_chat, model_folder):
    tiny_chat.main_model = str(model_folder["tiny-draft"])
    keys = [d["key"] for d in tiny_chat.drafts]
    assert keys == [str(model_folder["tiny-main"]), str(model_folder["other"])]
    assert tiny_chat.drafts[0]["notes"]  # a draft as large as its main: a warning
    assert tiny_chat.draft_model == ""  # nothing remembered for this main model
    assert settled(tiny_chat)["state"] == "idle"
    tiny_chat.main_model = str(model_folder["tiny-main"])  # back: the draft chosen for it
    assert tiny_chat.draft_model == str(model_folder["tiny-draft"])
    assert settled(tiny_chat)["state"] == "idle"


def test_set_default_draft_is_remembered(tiny_chat, model_folder):
    Browser(tiny_chat).click("set_default_draft")
    assert tiny_chat.default_draft == str(model_folder["tiny-draft"])
    again = ChatWidget(str(model_folder["tiny-main"]), manager=EngineManager(n_ctx=256))
    assert again.draft_model == str(model_folder["tiny-draft"])


def test_generation_on_the_tiny_models(tiny_chat):
    browser = Browser(tiny_chat)
    browser.click("send", text="hello world")
    reply = tiny_chat.wait(60)
    assert "error" not in reply, reply.get("error")
    assert 0 < len(reply["tokens"]) <= 24
    assert reply["stats"]["draft_model"] and reply["stats"]["total_draft_tokens_count"] > 0
    assert reply["main_model"] == "tiny-main"
    assert browser.streamed_tokens() == reply["tokens"]
    browser.click("send", text="and again")  # a second turn carries the conversation
    assert "error" not in tiny_chat.wait(60)
    assert [m["role"] for m in tiny_chat.messages] == ["user", "assistant"] * 2


def test_an_unusable_draft_is_an_error_in_words(model_folder, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(model_folder["tiny-draft"].read_bytes()[:4096])
    widget = ChatWidget(
        str(model_folder["tiny-main"]),
        draft=str(cut),
        manager=EngineManager(n_ctx=256, n_threads=1),
    )
    assert widget.status["state"] == "error"
    assert "cut.gguf" in widget.status["message"]
    assert widget.draft_model == ""


def test_a_prompt_too_long_is_reported_and_the_chat_goes_on(tiny_chat):
    tiny_chat.ask("hello world " * 400)
    failed = tiny_chat.wait(60)
    assert "context" in failed["error"] and failed["tokens"] == []
    assert tiny_chat.status["state"] == "idle"
    tiny_chat.clear()
    tiny_chat.ask("hello")
    assert "error" not in tiny_chat.wait(60)


def test_an_engine_that_cannot_run_here_says_why(toy, monkeypatch):
    from specdec_jupyter.engines import registry

    monkeypatch.setattr(registry.MlxKind, "modules", ("specdec_no_such_module",))
    chat = ChatWidget(engine="toy", max_tokens=8)
    mlx = next(e for e in chat.engines if e["name"] == "mlx")
    assert not mlx["available"] and "specdec_no_such_module is not installed" in mlx["note"]
    assert "pip install 'specdec_jupyter[mlx]'" in mlx["note"]
    chat.engine = "mlx"
    assert chat.status["state"] == "error"
    assert chat.status["message"].startswith("the mlx engine cannot run here")


@pytest.mark.real
def test_continue_and_regenerate_on_the_real_pair(qwen_paths):
    """Continue and Regenerate on the Qwen2.5-Coder pair: the continued reply keeps its
    tokens and their provenance, and the stats are the whole reply's; Regenerate keeps it
    as version 1 of 2."""
    main, draft = (str(path) for path in qwen_paths)
    chat = ChatWidget(main, draft=draft, manager=EngineManager(n_ctx=1024), max_tokens=12)
    chat.settings = {**chat.settings, "draft_tokens": 3, "draft_mode": "model"}
    assert settled(chat, 300)["state"] == "idle", chat.status
    chat.ask("Write a Python function that adds two numbers. Code only.")
    first = chat.wait(600)
    assert "error" not in first, first.get("error")
    chat.continue_reply()
    longer = chat.wait(600)
    assert "error" not in longer, longer.get("error")
    kept = len(first["tokens"])
    assert longer["tokens"][:kept] == first["tokens"] and len(longer["tokens"]) > kept
    assert longer["content"].startswith(first["content"])
    assert longer["stats"]["predicted_tokens_count"] == len(longer["tokens"])
    assert longer["stats"]["accepted_draft_tokens_count"] == sum(
        t["source"] == "draft" for t in longer["tokens"]
    )
    assert {r["source"] for r in longer["rounds"] if r["drafted"]} == {"model"}
    chat.regenerate()
    again = chat.wait(600)
    assert "error" not in again, again.get("error")
    assert again["version"] == 1 and again["versions"][0]["tokens"] == longer["tokens"]
    assert [m["role"] for m in chat.messages] == ["user", "assistant"]


@pytest.mark.parametrize(
    "content",
    [
        {"type": "edit"},
        {"type": "edit", "index": "first", "text": "x"},
        {"type": "show_version", "index": 0, "version": None},
        ["not", "an", "object"],
    ],
)
def test_a_malformed_message_from_the_page_is_a_status_not_a_traceback(toy, content):
    """Issue 23 T7: malformed widget messages raised tracebacks in the kernel."""
    toy._handle_custom_msg(content, [])
    assert toy.status["state"] == "error"
    assert toy.status["message"].startswith("a message from the page was malformed")
    Browser(toy).click("send", text="the cat")
    assert toy.wait(30)["content"], "the chat still works"


def test_a_load_option_of_the_wrong_type_is_a_status_in_words(toy):
    """T7: `gpu_layers: "x"` from the settings form showed a raw TypeError."""
    toy.settings = {**toy.settings, "gpu_layers": "x"}
    assert settled(toy)["state"] == "error"
    assert "gpu_layers must be -1 (all), 0 (none)" in toy.status["message"]


def test_the_first_screens_suggestion_replies_with_its_speedup_over_plain(toy):
    """The empty chat's suggestion (a code edit) runs in draft mode hybrid with plain decoding
    beside it: its reply shows the speedup measured in that run, and why auto drafted."""
    (suggestion,) = toy.suggestions
    assert suggestion["compare"] and toy.settings["draft_mode"] == "hybrid"
    Browser(toy).click("send", text="the cat sat on the mat and the cat", compare=True)
    reply = toy.wait(30)
    rows = dict(reply["stats_rows"])
    assert rows["speedup over plain"].endswith("this run)")
    assert rows["auto"].startswith("drafted on ")
    assert reply["settings"]["compare"] is True and toy.settings["compare"] is False


def test_a_main_model_of_another_family_is_offered_drafts_of_text(tiny_chat, model_folder):
    """With "other" as main, no model on the machine shares its vocabulary: the tiny models are
    offered in their own group, as drafts of text, and the chat drafts with one."""
    assert tiny_chat.draft_guidance == ""  # the tiny pair fits
    tiny_chat.main_model = str(model_folder["other"])
    assert {d["key"] for d in tiny_chat.drafts} == {
        str(model_folder["tiny-main"]),
        str(model_folder["tiny-draft"]),
    }
    assert all(d["group"] != "same vocabulary" for d in tiny_chat.drafts)
    assert tiny_chat.draft_guidance == "", "a draft of text fits"
    tiny_chat.draft_model = str(model_folder["tiny-draft"])
    assert settled(tiny_chat)["state"] == "idle"
    tiny_chat.ask("one two three one two three one two three")
    reply = tiny_chat.wait(60)
    assert "error" not in reply and reply["stats"]["text_draft"] is True


class HeldUntilOpen(EngineTap):
    """The toy main model, each call held while `gate` is closed; `callers` lists the
    sequence of each call (its views share the list)."""

    def __init__(self, engine, gate: threading.Event):
        super().__init__(engine)
        self.gate, self.callers = gate, []

    def before(self, tokens, n_logits):
        assert self.gate.wait(30), "the test never opened the gate"
        self.callers.append(id(self.inner))


def test_two_chats_on_one_model_reply_at_once_each_as_alone():
    """Two chat widgets on one manager (two sequences): their replies go round by round
    together (the toy makes a call per sequence: they take turns), and each is the reply it
    gets alone, token for token, with its own stats."""
    gate, taps = threading.Event(), []

    def factory(model, options):
        engine = open_model(model, options)
        if model.name.startswith("toy-trigram"):
            taps.append(HeldUntilOpen(engine, gate))
            return taps[-1]
        return engine

    manager = EngineManager(engine_factory=factory, parallel=2)
    asks = [  # both greedy: one engine (a seeded run opens its models exact, another one)
        ("the cat sat on", {"draft_tokens": 2}),
        ("the dog ran", {"draft_mode": "hybrid", "draft_tokens": 3}),
    ]

    def chats() -> list[ChatWidget]:
        made = [ChatWidget(engine="toy", manager=manager, max_tokens=24, **s) for _, s in asks]
        for widget in made:
            settled(widget)
        return made

    gate.set()
    alone = []
    for widget, (text, _) in zip(chats(), asks, strict=True):
        widget.ask(text)
        alone.append(widget.wait(30))
    gate.clear()
    (tap,) = taps
    together = chats()
    tap.callers.clear()
    together[0].ask(asks[0][0])  # held at its prompt
    batcher = manager._sharing.batcher(tap)
    together[1].ask(asks[1][0])
    assert batcher.wait_for(lambda: batcher.waiting == 1, 120), "the second never came"
    gate.set()
    replies = [widget.wait(30) for widget in together]
    turns = [a for a, b in itertools.pairwise(tap.callers) if a != b]
    assert len(set(tap.callers)) == 2 and len(turns) >= 4, "they took turns, round by round"
    for one, other in zip(alone, replies, strict=True):
        assert [t["token_id"] for t in other["tokens"]] == [t["token_id"] for t in one["tokens"]]
        assert other["stats"]["predicted_tokens_count"] == len(other["tokens"])
        assert other["stats"]["draft_model"] == one["stats"]["draft_model"]
