"""Models by their hub names (`owner/repo:QUANT`, as llama.cpp's -hf takes them) and the seed's
pairs by short names, fetched from a folder laid out as the hub: no hub is reachable here, and
the selection of a repository's files is the same whichever lists them."""

from __future__ import annotations

import shutil

import pytest

from specdec_jupyter import cli
from specdec_jupyter.errors import FetchError, UnknownModelError
from specdec_jupyter.models.hub import HubName, choose_files, hub_names, is_hub_name, parse
from tests.support.tiny_models import make_tiny_pair

QWEN_7B = [  # Qwen/Qwen2.5-7B-Instruct-GGUF, as the hub lists it: whole files and split ones
    ".gitattributes",
    "README.md",
    "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf",
    "qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf",
    "qwen2.5-7b-instruct-q8_0-00001-of-00003.gguf",
    "qwen2.5-7b-instruct-q8_0-00002-of-00003.gguf",
    "qwen2.5-7b-instruct-q8_0-00003-of-00003.gguf",
    "qwen2.5-7b-instruct-q2_k.gguf",
    "qwen2.5-7b-instruct-fp16-00001-of-00004.gguf",
]
LLAMA_8B = [  # a repository of whole files, one per quant, and a vision projector
    "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
    "Meta-Llama-3.1-8B-Instruct-Q4_K_S.gguf",
    "Meta-Llama-3.1-8B-Instruct-IQ4_XS.gguf",
    "mmproj-Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
]


def test_names_as_llama_cpp_takes_them():
    assert parse("Qwen/Qwen2.5-7B-Instruct-GGUF:Q8_0") == HubName(
        "Qwen/Qwen2.5-7B-Instruct-GGUF", "Q8_0"
    )
    assert parse("Qwen/Qwen2.5-7B-Instruct-GGUF").quant == "Q4_K_M"
    assert is_hub_name("Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M") and is_hub_name("qwen2.5-14b-pair")
    assert not is_hub_name("qwen2.5-coder-1.5b")  # a catalog name
    with pytest.raises(UnknownModelError, match="owner/repo"):
        parse("no-owner:Q4_K_M")
    main, draft = hub_names("llama-3.1-8b-pair")
    assert (main.repo, draft.repo) == (
        "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF",
        "bartowski/Llama-3.2-1B-Instruct-GGUF",
    )
    assert [n.repo for n in hub_names("qwen2.5-14b-pair")] == [
        "Qwen/Qwen2.5-14B-Instruct-GGUF",
        "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
    ]
    assert hub_names("deepseek-r1-distill-qwen-32b-pair")[1].repo.endswith("Qwen-1.5B-GGUF")


def test_the_files_of_a_quant_one_file_or_every_part_in_order():
    name = parse("Qwen/Qwen2.5-7B-Instruct-GGUF")
    assert choose_files(QWEN_7B, name) == QWEN_7B[2:4]
    assert choose_files(QWEN_7B, parse("Qwen/x:q8_0")) == QWEN_7B[4:7]  # case as typed
    assert choose_files(QWEN_7B, parse("Qwen/x:Q2_K")) == ["qwen2.5-7b-instruct-q2_k.gguf"]
    assert choose_files(LLAMA_8B, parse("bartowski/x:Q4_K_M")) == [LLAMA_8B[0]]  # not mmproj
    with pytest.raises(FetchError, match="no Q5_K_M GGUF file; it has .*IQ4_XS, Q4_K_M, Q4_K_S"):
        choose_files(LLAMA_8B, parse("bartowski/x:Q5_K_M"))
    with pytest.raises(FetchError, match="split in 4 parts; 1 found"):
        choose_files(QWEN_7B, parse("Qwen/x:fp16"))


def test_a_user_types_a_pairs_name_and_gets_a_compatible_pair(tmp_path, monkeypatch, capsys):
    """`models fetch qwen2.5-14b-pair` from a folder laid out as the hub (tiny stand-ins under
    the hub's file names); `compat` then finds the draft fits the main model."""
    made = make_tiny_pair(tmp_path / "made")
    mirror = tmp_path / "mirror"
    for (repo, filename), source in zip(
        [
            ("Qwen/Qwen2.5-14B-Instruct-GGUF", "qwen2.5-14b-instruct-q4_k_m.gguf"),
            ("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf"),
        ],
        made,
        strict=True,
    ):
        (mirror / repo).mkdir(parents=True)
        shutil.copy(source, mirror / repo / filename)
        (mirror / repo / "qwen2.5-instruct-q8_0.gguf").write_bytes(b"not this quant")
    models = tmp_path / "models"
    for variable, value in {
        "HOME": tmp_path,
        "SPECDEC_MODELS_DIR": models,
        "HF_HUB_CACHE": tmp_path / "hub",
        "SPECDEC_MODEL_PATH": "",
        "SPECDEC_CACHE_DIR": tmp_path / "cache",
    }.items():
        monkeypatch.setenv(variable, str(value))
    assert cli.main(["models", "fetch", "qwen2.5-14b-pair", "--mirror", str(mirror)]) == 0
    out = capsys.readouterr().out
    assert "Qwen/Qwen2.5-14B-Instruct-GGUF:Q4_K_M: at " in out
    assert sorted(p.name for p in models.iterdir()) == [
        "qwen2.5-0.5b-instruct-q4_k_m.gguf",
        "qwen2.5-14b-instruct-q4_k_m.gguf",
    ]
    assert cli.main(["compat", str(models / "qwen2.5-14b-instruct-q4_k_m.gguf")]) == 0
    report = " ".join(capsys.readouterr().out.split())
    assert "qwen2.5-0.5b-instruct-q4_k_m" in report and "another vocabulary" not in report
    assert cli.main(["models", "fetch", "Qwen/Nothing-GGUF", "--mirror", str(mirror)]) == 2
    assert "Qwen/Nothing-GGUF is not in the mirror" in capsys.readouterr().err
