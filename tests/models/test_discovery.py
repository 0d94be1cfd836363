"""Finding models in the folders users keep them in, and reading their facts without weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from specdec_jupyter.engines.resolve import resolve
from specdec_jupyter.models.discovery import discover, model_roots
from specdec_jupyter.models.gguf.check import diagnose_gguf
from specdec_jupyter.models.gguf.llama_load import read_vocabulary
from specdec_jupyter.models.gguf.metadata import read_gguf_vocabulary
from specdec_jupyter.models.metadata import read_model_info
from tests.support.model_folders import write_damaged_files, write_mlx_folder
from tests.support.real_models import catalog_file
from tests.support.tiny_models import write_tiny_gguf


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Every root in a temporary home: ours, LM Studio's, the hub cache, a named folder."""
    home = tmp_path / "home"
    folders = {
        "specdec": tmp_path / "specdec-models",
        "lmstudio": home / ".lmstudio" / "models",
        "huggingface": tmp_path / "hf-hub",
        "user": tmp_path / "my-models",
    }
    for folder in folders.values():
        folder.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SPECDEC_MODELS_DIR", str(folders["specdec"]))
    monkeypatch.setenv("HF_HUB_CACHE", str(folders["huggingface"]))
    monkeypatch.setenv("SPECDEC_MODEL_PATH", str(folders["user"]))
    return folders


def test_each_store_layout_is_found_and_named_as_its_store_names_it(roots, tiny_paths):
    main, draft = tiny_paths
    (roots["specdec"] / "tiny-main.gguf").write_bytes(main.read_bytes())
    lmstudio = roots["lmstudio"] / "tiny-publisher" / "Tiny-GGUF"
    lmstudio.mkdir(parents=True)
    (lmstudio / "tiny-draft.gguf").write_bytes(draft.read_bytes())
    repo = roots["huggingface"] / "models--tiny-org--Tiny-GGUF"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "0123abcd").write_bytes(draft.read_bytes())
    snapshot = repo / "snapshots" / "f00d"
    snapshot.mkdir(parents=True)
    (snapshot / "tiny.gguf").symlink_to(repo / "blobs" / "0123abcd")
    (snapshot / "zz-link.gguf").symlink_to(repo / "blobs" / "0123abcd")  # same file twice
    write_mlx_folder(roots["huggingface"] / "models--mlx-org--Tiny-4bit" / "snapshots" / "beef")
    write_tiny_gguf(roots["user"] / "split-00001-of-00002.gguf", seed=5)
    (roots["user"] / "split-00002-of-00002.gguf").write_bytes(b"GGUF later part")

    found = {m.name: m for m in discover()}

    assert set(found) == {
        "tiny-main.gguf",
        "tiny-publisher/Tiny-GGUF/tiny-draft.gguf",
        "tiny-org/Tiny-GGUF/tiny.gguf",
        "mlx-org/Tiny-4bit",
        "split-00001-of-00002.gguf",
    }, "hub symlinks to one blob count once; later parts of a split file are not models"
    assert [found[n].source for n in ("tiny-main.gguf", "mlx-org/Tiny-4bit")] == [
        "specdec",
        "huggingface",
    ]
    assert all(m.info.usable for m in found.values())
    mlx = found["mlx-org/Tiny-4bit"].info
    assert (mlx.format, mlx.vocab_type, mlx.vocab_size, mlx.quantization) == (
        "mlx",
        "BPE",
        300,
        "4-bit",
    )
    assert mlx.parameters == 300 * 8 * 8, "4-bit weights pack 8 values per uint32; scales left out"
    assert resolve("tiny-publisher/Tiny-GGUF/tiny-draft.gguf").path == lmstudio / "tiny-draft.gguf"


def test_unusable_models_are_listed_with_a_reason_and_never_stop_the_listing(roots, tiny_paths):
    damaged = write_damaged_files(roots["user"], tiny_paths[0])
    (roots["user"] / "empty-folder").mkdir()
    write_tiny_gguf(roots["user"] / "zz-good.gguf")  # sorted after the damaged ones

    found = {m.path: m.info for m in discover()}

    expected = {
        "corrupt header": "header is damaged or cut short",
        "truncated": "truncated: its tensors need",
        "text file": "not a GGUF file (it starts with b'thes'",
        "empty file": "the file is empty",
        "no tokenizer": "it has no tokenizer (tokenizer.json, vocab.json, tokenizer.model)",
    }
    for what, reason in expected.items():
        assert reason in found[damaged[what]].problem, what
    assert found[roots["user"] / "zz-good.gguf"].usable
    assert roots["user"] / "empty-folder" not in found, "an empty folder holds no model"
    assert read_model_info(roots["user"] / "empty-folder").problem == "the folder is empty"
    assert diagnose_gguf(damaged["truncated"]).startswith("it is truncated")


def test_the_cli_lists_models_and_says_where_it_looked(roots, tiny_paths):
    write_damaged_files(roots["user"], tiny_paths[0])
    (roots["specdec"] / "tiny-main.gguf").write_bytes(tiny_paths[0].read_bytes())
    command = [sys.executable, "-m", "specdec_jupyter.cli", "models", "list"]
    listed = json.loads(
        subprocess.run([*command, "--json"], capture_output=True, text=True, check=True).stdout
    )
    text = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    by_name = {m["name"]: m for m in listed}
    assert by_name["tiny-main.gguf"]["engine"] == "llama.cpp"
    assert by_name["tiny-main.gguf"]["vocab_size"] == 384
    assert "not a GGUF file" in by_name["notes.gguf"]["problem"]
    assert "unusable (5):" in text and "notes.gguf (user): not a GGUF file" in text
    assert f"searched: {roots['specdec']}" in text


def test_gguf_vocabulary_matches_llamacpp_on_tiny_models(tmp_path, tiny_paths):
    for path in (*tiny_paths, write_tiny_gguf(tmp_path / "other.gguf", vocab="other")):
        assert read_gguf_vocabulary(path) == read_vocabulary(path)


@pytest.mark.real
@pytest.mark.parametrize("key", ["gemma-3-270m", "qwen2.5-coder-0.5b"])
def test_gguf_vocabulary_matches_llamacpp_on_real_models(key):
    """Gemma (SPM, adds BOS) and Qwen (BPE, no BOS): the header gives what llama.cpp sees."""
    path = catalog_file(key)
    assert read_gguf_vocabulary(path) == read_vocabulary(path)


@pytest.mark.real
def test_reading_a_real_model_takes_well_under_a_second(capsys):
    timings = []
    for key in (
        "qwen2.5-coder-1.5b",
        "qwen2.5-coder-0.5b",
        "gemma-3-270m",
        "smollm2-135m-instruct",
    ):
        path = catalog_file(key)
        started = time.perf_counter()
        info = read_model_info(path)
        timings.append((path.name, time.perf_counter() - started))
        assert info.usable
    with capsys.disabled():
        print("\nmetadata: " + ", ".join(f"{name} {s * 1000:.0f} ms" for name, s in timings))
    assert max(seconds for _, seconds in timings) < 0.5
    qwen = read_model_info(catalog_file("qwen2.5-coder-1.5b"))
    assert (qwen.architecture, qwen.size_label, qwen.quantization, qwen.context_length) == (
        "qwen2",
        "1.5B",
        "Q4_K_M",
        32768,
    )
    assert (qwen.vocab_type, qwen.vocab_size, qwen.bos_id, qwen.eos_id) == (
        "BPE",
        151936,
        151643,
        151645,
    )
    assert (qwen.add_bos, qwen.add_eos) == (False, False)


def test_model_path_entries_and_extra_folders_are_roots(monkeypatch, tmp_path):
    monkeypatch.setenv("SPECDEC_MODEL_PATH", os.pathsep.join(["/a", "", "/b"]))
    user = [r.path for r in model_roots([tmp_path]) if r.source == "user"]
    assert [str(p) for p in user] == ["/a", "/b", str(tmp_path)]
