"""Every engine kind through every door: load(), the CLI, EngineManager, the chat widget and
the magics run the tiny GGUF pair, the tiny MLX pair and the toy pair, and each door
resolves a model's names (listed name, file or folder name, stem, path) to the same model."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from specdec_jupyter import load
from specdec_jupyter.cli import main as cli
from specdec_jupyter.engines.registry import EngineNote
from specdec_jupyter.engines.resolve import resolve
from specdec_jupyter.errors import UnknownModelError
from specdec_jupyter.models.mlx.convert import convert_gguf_to_mlx
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.sessions.pair import Pair
from specdec_jupyter.widgets import ChatWidget
from tests.support.magic_shell import magic

PROMPT = "the draft model"
MAX_TOKENS = 8
KINDS = ("llama.cpp", "mlx", "toy")


@pytest.fixture(scope="module")
def folder(tiny_paths, tmp_path_factory) -> Path:
    """The tiny pair as GGUF files under gguf/ and as MLX folders under mlx/."""
    root = tmp_path_factory.mktemp("matrix")
    (root / "gguf").mkdir()
    for gguf in tiny_paths:
        (root / "gguf" / gguf.name).symlink_to(gguf)
        convert_gguf_to_mlx(gguf, root / "mlx" / f"{gguf.stem}-mlx", bits=32)
    return root


@pytest.fixture(autouse=True)
def only_these_models(folder, tmp_path, monkeypatch):
    """The matrix folder is the only place models are found."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPECDEC_MODELS_DIR", str(tmp_path / "no-models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-hub"))
    monkeypatch.setenv("SPECDEC_MODEL_PATH", str(folder))
    monkeypatch.setenv("SPECDEC_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(tmp_path / "cache"))


def names(folder: Path, kind: str, role: str) -> list[str]:
    """Every way a user may name the model: each must mean the same one."""
    if kind == "toy":
        return {"main": ["toy-trigram"], "draft": ["toy-bigram"]}[role]
    stem = f"tiny-{role}"
    if kind == "llama.cpp":
        path = folder / "gguf" / f"{stem}.gguf"
        return [f"gguf/{stem}.gguf", f"{stem}.gguf", stem, str(path)]
    path = folder / "mlx" / f"{stem}-mlx"
    return [f"mlx/{stem}-mlx", f"{stem}-mlx", str(path)]


@pytest.mark.parametrize("kind", KINDS)
def test_every_name_a_listing_prints_resolves_to_one_model(folder, kind):
    for role in ("main", "draft"):
        models = {resolve(name) for name in names(folder, kind, role)}
        assert len(models) == 1 and models.pop().kind == kind
        assert len({resolve(name, kind) for name in names(folder, kind, role)}) == 1


def test_a_name_two_models_share_is_an_error_listing_both(folder, tmp_path):
    twin = folder / "mlx" / "tiny-main"  # an MLX folder named as the GGUF file's stem
    twin.symlink_to(folder / "mlx" / "tiny-main-mlx")
    try:
        with pytest.raises(UnknownModelError, match="matches 2 models") as caught:
            resolve("tiny-main")
        assert "gguf/tiny-main.gguf" in str(caught.value) and "mlx/tiny-main" in str(caught.value)
        assert resolve("tiny-main", "llama.cpp").path == folder / "gguf" / "tiny-main.gguf"
        assert resolve("tiny-main", "mlx").kind == "mlx"
    finally:
        twin.unlink()


@pytest.mark.parametrize("kind", KINDS)
def test_every_door_runs_the_pair_and_agrees(folder, kind, ip, capsys):
    main_names, draft_names = names(folder, kind, "main"), names(folder, kind, "draft")
    main_model, draft_model = resolve(main_names[0]), resolve(draft_names[0])
    options = {"max_tokens": MAX_TOKENS, "temperature": 0.0, "draft_tokens": 2}

    session = load(main_names[-1], draft_names[-1], n_ctx=256, progress=False)
    reference = session.generate(PROMPT, **options)
    session.close()
    assert reference.stats.predicted_tokens_count >= 1
    assert reference.stats.backend.startswith(kind)
    texts = {"load": reference.text}

    pair = ["--main", main_names[0], "--draft", draft_names[0], "--engine", kind]
    settings = ["--max-tokens", str(MAX_TOKENS), "--draft-tokens", "2", "--n-ctx", "256"]
    assert cli(["generate", *pair, *settings, "--threads", "1", "--prompt", PROMPT, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    texts["cli"] = printed["text"]
    assert printed["stats"]["draft_model"] == reference.stats.draft_model

    manager = EngineManager(n_ctx=256, n_threads=1)
    pair = Pair(main_names[1 % len(main_names)], draft_names[1 % len(draft_names)])
    result = manager.generate(PROMPT, pair, **options)
    texts["manager"] = result.text
    assert set(manager.loaded()) == {main_model, draft_model}
    manager.close()

    chat_manager = EngineManager(n_ctx=256, n_threads=1)
    chat = ChatWidget(main_names[-1], draft_names[0], engine=kind, manager=chat_manager, **options)
    assert (chat.engine, chat.main_model, chat.draft_model) == (
        kind,
        main_model.key,
        draft_model.key,
    )
    chat.ask(PROMPT)
    reply = chat.wait(60)
    assert "error" not in reply, reply.get("error")
    texts["chat"] = reply["content"]
    chat_manager.close()

    _, captured = magic(ip, f"load {main_names[0]} --draft {draft_names[-1]} --threads 1")
    assert f"ready ({kind})" in captured.stdout, captured.stderr
    magics = ip.magics_manager.registry["SpecDecMagics"]
    assert (magics.main, magics.draft) == (main_model.key, draft_model.key)
    _, captured = magic(ip, f"--max-tokens {MAX_TOKENS} --temperature 0 --draft-tokens 2", PROMPT)
    texts["magics"] = captured.outputs[-1].data["text/html"]

    assert {texts[door] for door in ("load", "cli", "manager", "chat")} == {reference.text}
    assert "".join(e.text for e in reference.events[:1]) in texts["magics"]
    assert reference.stats.draft_model in texts["magics"]


def test_mlx_on_a_linux_cpu_is_a_note_wherever_it_loads(folder, ip, capsys):
    main = names(folder, "mlx", "main")[0]
    with pytest.warns(EngineNote, match="MLX runs on the CPU here, without acceleration"):
        load(main, n_ctx=256, progress=False).close()
    assert cli(["generate", "--main", main, "--prompt", "hi", "--max-tokens", "1", "--json"]) == 0
    assert "note: MLX runs on the CPU here" in capsys.readouterr().err
    _, captured = magic(ip, f"load {main} --no-draft")
    assert "note: MLX runs on the CPU here" in captured.stdout


def test_gpu_layers_on_a_model_without_layers_is_a_note(folder):
    with pytest.warns(EngineNote, match="mlx engine does not take gpu_layers"):
        session = load(names(folder, "mlx", "main")[0], gpu_layers=4, n_ctx=256, progress=False)
    session.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", EngineNote)  # the defaults are never a note
        load("toy-trigram", "toy-bigram").close()
