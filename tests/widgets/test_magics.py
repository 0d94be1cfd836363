"""`%load_ext specdec_jupyter`: the `%specdec` and `%%specdec` magics in IPython's test shell."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from specdec_jupyter.models.names import short_name
from specdec_jupyter.widgets import ChatWidget, TeachWidget
from tests.support.held_toy import hold_toy_until_cancelled
from tests.support.magic_shell import magic


@pytest.mark.parametrize(
    "line", ["--help", "models --help", "load -h", "chat --help", "teach --help", "costs -h"]
)
def test_help_on_each(ip, line):
    _, captured = magic(ip, line)
    assert "%specdec" in captured.stdout


def test_cell_magic_help(ip):
    _, captured = magic(ip, "--help", "ignored")
    assert "--max-tokens" in captured.stdout and "--no-draft" in captured.stdout


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("load", "required: main"),
        ("load x --engine vulkan", "invalid choice"),
        ("frobnicate", "unknown command 'frobnicate'"),
        ("load x --draft y --no-draft", "not both"),
        ("teach --k 0", "at least 1"),
        ("teach --temperature -1", "temperature must be >= 0"),
        ('load "abc', "No closing quotation"),  # issue 23 T3: a ValueError traceback
    ],
)
def test_argument_errors_are_one_line(ip, line, message):
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("specdec", line)
    with capture_output() as captured:
        ip.run_cell(f"%specdec {line}")
    assert "Traceback" not in captured.stdout + captured.stderr
    assert len((captured.stdout + captured.stderr).strip().splitlines()) == 1


def test_package_errors_are_one_line_too(ip):
    _, captured = magic(ip, "load no-such-model")
    assert captured.stderr.startswith("specdec: 'no-such-model' is not a file")
    assert len(captured.stderr.strip().splitlines()) == 1


def isolated_models(monkeypatch, tmp_path, folder) -> None:
    """Models found in `folder` only."""
    for variable, value in {
        "HOME": tmp_path,
        "SPECDEC_MODELS_DIR": folder,
        "HF_HUB_CACHE": tmp_path / "hub",
        "SPECDEC_MODEL_PATH": "",
    }.items():
        monkeypatch.setenv(variable, str(value))


def test_a_first_specdec_cell_runs_on_the_chats_default_pair_as_the_chat_does(
    ip, tiny_paths, tmp_path, monkeypatch
):
    """`%%specdec` needed `%specdec load` while `%specdec chat` did not: both open on the same
    pair now; with no model on the machine the one line says how to fetch one."""
    isolated_models(monkeypatch, tmp_path, tmp_path / "empty")
    _, captured = magic(ip, "--max-tokens 4", "a prompt")
    assert "fetch the pair with `specdec-jupyter models fetch" in captured.stderr
    assert len(captured.stderr.strip().splitlines()) == 1
    isolated_models(monkeypatch, tmp_path, tiny_paths[0].parent)
    chat, _ = magic(ip, "chat")
    _, captured = magic(ip, "--max-tokens 4 --seed 1", "one two three")
    assert "no pair loaded yet: the chat's default pair" in captured.stdout
    assert f"loading {short_name(Path(chat.main_model))}" in captured.stdout
    _, captured = magic(ip, "stats")
    assert "predicted tokens: 4" in captured.stdout


def test_models_lists_what_is_found(ip, tiny_paths, monkeypatch):
    monkeypatch.setenv("SPECDEC_MODELS_DIR", str(tiny_paths[0].parent))
    _, captured = magic(ip, "models")
    assert "tiny-main.gguf" in captured.stdout and "tiny-draft.gguf" in captured.stdout


def stat_in(html: str, label: str) -> str:
    """A stat's value in the stats line of an output's HTML (stats_layout.rows_to_html)."""
    found = re.search(
        rf'data-label="{label}"><span class="specdec-stat-label">[^<]*</span> <b>([^<]*)', html
    )
    assert found, f"no {label!r} in the stats line"
    return found.group(1)


def test_load_generate_and_stats_on_the_toy_pair(ip):
    _, captured = magic(ip, "stats")
    assert "no generation yet" in captured.stdout
    _, captured = magic(ip, "load toy-trigram --engine toy")
    assert "with draft toy-bigram" in captured.stdout
    _, captured = magic(ip, "--max-tokens 12 --temperature 0", "the cat sat on the")
    html = captured.outputs[-1].data["text/html"]
    assert "specdec-draft" in html or "specdec-main" in html
    assert "toy-trigram · draft toy-bigram" in html
    assert stat_in(html, "predicted tokens") == "12"
    assert stat_in(html, "stop reason") == "token limit"
    _, captured = magic(ip, "stats")
    assert "predicted tokens: 12" in captured.stdout and "accepted:" in captured.stdout


def test_no_draft_cell(ip):
    magic(ip, "load toy-trigram --engine toy")
    _, captured = magic(ip, "--no-draft --max-tokens 5", "the cat")
    html = captured.outputs[-1].data["text/html"]
    assert 'class="specdec-draft"' not in html and stat_in(html, "draft model") == "none"


def test_chat_shows_the_widget_on_the_loaded_pair(ip):
    magic(ip, "load toy-trigram --engine toy")
    chat, _ = magic(ip, "chat")
    assert isinstance(chat, ChatWidget)
    assert chat.engine == "toy" and chat.draft_model == "toy-bigram"
    chat.settings = {**chat.settings, "max_tokens": 7}
    chat.ask("the dog")
    chat.wait(30)
    _, captured = magic(ip, "stats")
    assert "predicted tokens: 7" in captured.stdout


def test_teach_shows_the_toy_pair_until_a_pair_is_loaded(ip):
    teach, _ = magic(ip, "teach --k 2 --seed 3 the main model")
    assert isinstance(teach, TeachWidget)
    assert (teach.engine, teach.draft_model) == ("toy", "toy-bigram")
    assert (teach.settings["k"], teach.settings["seed"]) == (2, 3)
    assert teach.settings["prompt"] == "the main model" and len(teach.trace["proposals"]) == 2
    quoted, _ = magic(ip, 'teach "What is the quadratic formula?"')
    assert quoted.settings["prompt"] == "What is the quadratic formula?"  # its quotes gone
    magic(ip, "load toy-trigram --engine toy --no-draft")
    _, captured = magic(ip, "teach")
    assert "has no draft" in captured.stderr and len(captured.stderr.strip().splitlines()) == 1


def test_connecting_to_what_is_not_a_url_is_one_line(ip):
    """Issue 23 T3: `%specdec connect notaurl` was a ValueError traceback."""
    _, captured = magic(ip, "connect notaurl")
    assert captured.stderr.startswith("specdec: 'notaurl' is not a server's address")
    assert "Traceback" not in captured.stdout + captured.stderr


def test_chat_runs_the_pair_as_it_was_loaded(ip):
    """`%specdec load --exact` then `%specdec chat`: the chat's models are the loaded ones (not
    a second, fast copy whose greedy text could differ from plain decoding's)."""
    magic(ip, "load toy-trigram --engine toy --exact --n-ctx 512")
    chat, _ = magic(ip, "chat")
    assert chat.settings["exact"] is True and chat.settings["n_ctx"] == 512


def test_running_the_chat_cell_again_during_a_reply_stops_it_and_keeps_the_conversation(
    ip, monkeypatch
):
    """Re-running the chat cell mid-reply orphaned the run: the conversation vanished, the
    model stayed busy ("...is generating for another run") and nothing could stop it. The new
    chat stops it after its round, keeps what it generated, and can reply at once."""
    reached = hold_toy_until_cancelled(monkeypatch)
    magic(ip, "load toy-trigram --engine toy")
    first, _ = magic(ip, "chat")
    first.settings = {**first.settings, "max_tokens": 100_000, "draft_tokens": 2}
    first.ask("the main model")
    assert reached.wait(30)
    first.ask("a message queued behind it")
    second, _ = magic(ip, "chat")
    assert first.comm is None  # closed: no second widget holds the models
    assert [m["role"] for m in second.messages] == ["user", "assistant"]
    kept = second.messages[-1]
    assert kept["stats"]["stop_reason"] == "userStopped" and kept["tokens"]
    second.settings = {**second.settings, "max_tokens": 5}
    second.ask("the dog")
    reply = second.wait(30)
    assert "error" not in reply and reply["stats"]["predicted_tokens_count"] == 5
    assert [m["content"] for m in second.messages if m["role"] == "user"] == [
        "the main model",
        "the dog",
    ]
