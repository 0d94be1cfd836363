"""Draft verdicts on files: both engines' rules, reasons, warnings, a cache never stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from specdec_jupyter import cli, load
from specdec_jupyter.engines.registry import engine_kind
from specdec_jupyter.engines.resolve import resolve
from specdec_jupyter.errors import ModelFileError
from specdec_jupyter.models.drafts import verdicts
from specdec_jupyter.models.drafts.compat import UNCOUNTED_SAMPLING, mlx_compatibility
from specdec_jupyter.models.drafts.verdicts import VerdictStore, check_draft, check_drafts
from specdec_jupyter.sessions.session import Session
from specdec_jupyter.settings import LoadOptions
from tests.support.model_folders import write_mlx_folder
from tests.support.real_models import catalog_file
from tests.support.tiny_models import write_tiny_gguf


@pytest.fixture
def store(tmp_path) -> VerdictStore:
    return VerdictStore(tmp_path / "cache" / "draft-verdicts.json")


@pytest.fixture
def judged(monkeypatch) -> list[tuple[str, str]]:
    """The pairs actually judged (not answered from the cache)."""
    calls: list[tuple[str, str]] = []
    judge = verdicts.judge_draft

    def counting(main, draft, read):
        calls.append((main.name, draft.name))
        return judge(main, draft, read)

    monkeypatch.setattr(verdicts, "judge_draft", counting)
    return calls


def sampling_of(draft: Path, main: Path) -> str:
    """How a session of the two models samples, as it finds the tokens they share."""
    kind = engine_kind("llama.cpp")
    options = LoadOptions(n_ctx=64, n_threads=1)
    session = Session(
        kind.open(resolve(str(main)), options), kind.open(resolve(str(draft)), options)
    )
    try:
        return session.shared_tokens.describe()
    finally:
        session.close()


def test_mlx_rule_compares_vocabulary_sizes():
    assert mlx_compatibility(151936, 151936).compatible
    assert mlx_compatibility(151936, 262144).reasons == ["vocabulary sizes 151936 vs 262144"]


def test_three_answers_same_vocabulary_another_vocabulary_and_unusable(tiny_paths, tmp_path, store):
    main, draft = tiny_paths
    other = write_tiny_gguf(tmp_path / "other.gguf", vocab="other")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(draft.read_bytes()[:4096])
    good, text, bad = check_drafts(main, [draft, other, cut], store=store)

    assert good.compatible and good.engine == "llama.cpp" and good.answer == "same vocabulary"
    assert set(good.engines) == {"llama.cpp", "mlx"}
    assert text.compatible and text.text_level and text.answer == "another vocabulary"
    assert text.reasons[0] == "vocabulary sizes 384 vs 600 (more than 128 apart)"
    assert text.reasons[1].startswith("token 5: ")
    assert text.warnings[0].startswith(
        "another vocabulary (vocabulary sizes 384 vs 600 (more than 128 apart)): drafts text"
    )
    assert text.warnings[0].endswith(f"when sampling, {sampling_of(other, main)}")
    assert "(48.0% of its vocabulary), lossless" in text.warnings[0]
    assert text.engines["mlx"].text_level
    assert text.engines["mlx"].warnings[0].endswith(UNCOUNTED_SAMPLING)
    assert text.engines["mlx"].reasons == ["vocabulary sizes 384 vs 600"]
    text.require_compatible()
    assert not bad.compatible and bad.answer == "unusable"
    assert bad.reasons[0].startswith("the draft model is unusable")
    with pytest.raises(ModelFileError, match="cut.gguf"):
        bad.require_compatible()


def test_verdicts_are_cached_until_a_file_changes(tiny_paths, tmp_path, store, judged):
    main = tiny_paths[0]
    draft = tmp_path / "draft.gguf"
    draft.write_bytes(tiny_paths[1].read_bytes())

    assert check_draft(main, draft, store=store).compatible
    assert check_draft(main, draft, store=store).compatible
    assert len(judged) == 1, "the second check is answered from the cache file"

    stat = draft.stat()
    os.utime(draft, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched
    assert check_draft(main, draft, store=store).compatible
    assert len(judged) == 2, "a new modification time recomputes the verdict"

    write_tiny_gguf(draft, vocab="other")  # replaced by another model under the same name
    assert check_draft(main, draft, store=store).text_level
    assert len(judged) == 3


def test_a_damaged_cache_file_is_only_a_cache(tiny_paths, store, judged):
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    assert check_draft(*tiny_paths, store=store).compatible
    store.path.write_text(json.dumps({"version": verdicts.CACHE_VERSION, "verdicts": {"x": 1}}))
    assert check_draft(*tiny_paths, store=store).compatible
    assert len(judged) == 2


def test_a_cache_that_cannot_be_written_is_skipped_with_a_note(tiny_paths, tmp_path, monkeypatch):
    """A cache is safe to lose: a cache folder that is a file must not stop a load."""
    blocked = tmp_path / "cache-is-a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("SPECDEC_CACHE_DIR", str(blocked))
    with pytest.warns(verdicts.CacheNote, match="not cached .*SPECDEC_CACHE_DIR"):
        session = load(*tiny_paths, n_ctx=64, n_threads=1, progress=False)
    assert session.generate("hello", raw=True, max_tokens=2).stats.predicted_tokens_count >= 1
    session.close()


def test_an_unusable_file_is_named_not_called_incompatible(tiny_paths, tmp_path, store):
    notes = tmp_path / "notes.gguf"
    notes.write_text("not a model")
    verdict = check_draft(tiny_paths[0], notes, store=store)
    assert not verdict.compatible
    assert verdict.reasons[0].startswith("the draft model is unusable: not a GGUF file")
    with pytest.raises(ModelFileError, match="notes.gguf: not a GGUF file"):
        verdict.require_compatible()


def test_mlx_folders_follow_the_mlx_rule(tmp_path, tiny_paths, store):
    main = write_mlx_folder(tmp_path / "main-4bit", vocab_size=300)
    same = write_mlx_folder(tmp_path / "draft-4bit", vocab_size=300)
    other = write_mlx_folder(tmp_path / "other-4bit", vocab_size=320)
    good, bad, gguf = check_drafts(main, [same, other, tiny_paths[1]], store=store)

    assert good.engine == "mlx" and good.compatible
    assert good.engines["llama.cpp"].reasons == [
        "the main model is an MLX folder; llama.cpp runs GGUF files",
        "the draft is an MLX folder; llama.cpp runs GGUF files",
    ]
    assert bad.reasons == ["vocabulary sizes 300 vs 320"]
    assert gguf.reasons == ["vocabulary sizes 300 vs 384"]


def test_touching_a_tokenizer_file_recomputes_an_mlx_verdict(tmp_path, store, judged):
    main = write_mlx_folder(tmp_path / "main-4bit")
    draft = write_mlx_folder(tmp_path / "draft-4bit")
    assert check_draft(main, draft, store=store).compatible
    write_mlx_folder(draft, vocab_size=310)
    assert check_draft(main, draft, store=store).reasons == ["vocabulary sizes 300 vs 310"]
    assert len(judged) == 2


@pytest.mark.real
def test_real_models_get_the_issues_verdicts(qwen_paths, store):
    big, small = qwen_paths
    gemma, smollm = catalog_file("gemma-3-270m"), catalog_file("smollm2-135m-instruct")
    qwen_small, gemma_v, smollm_v = check_drafts(big, [small, gemma, smollm], store=store)

    assert qwen_small.engines["llama.cpp"].compatible and qwen_small.engines["mlx"].compatible
    assert qwen_small.warnings == []
    assert "vocabulary sizes 151936 vs 262144 (more than 128 apart)" in gemma_v.reasons
    assert "vocabulary types BPE vs SPM" in gemma_v.reasons
    assert gemma_v.engines["mlx"].reasons == ["vocabulary sizes 151936 vs 262144"]
    assert "vocabulary sizes 151936 vs 49152 (more than 128 apart)" in smollm_v.reasons

    upside_down = check_draft(small, big, store=store)
    assert upside_down.compatible
    assert upside_down.warnings == [
        "the draft is not smaller than the main model (1.5B vs 0.5B): it will not speed anything up"
    ]


@pytest.mark.real
def test_cli_compat_json_lists_every_other_model_with_its_verdict(qwen_paths, tmp_path):
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # no LM Studio or hub cache: only our models folder
        "SPECDEC_MODELS_DIR": str(qwen_paths[0].parent),
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "SPECDEC_MODEL_PATH": "",
        "SPECDEC_CACHE_DIR": str(tmp_path / "cache"),
    }
    command = [sys.executable, "-m", "specdec_jupyter.cli", "compat", str(qwen_paths[0]), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    report = json.loads(done.stdout)

    by_file = {os.path.basename(c["draft"]): c for c in report["candidates"]}
    same = by_file["qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"]
    assert same["compatible"] and same["answer"] == "same vocabulary"
    for name, size in (
        ("gemma-3-270m-q4_k_m.gguf", 262144),
        ("SmolLM2-135M-Instruct.Q4_1.gguf", 49152),
    ):
        assert by_file[name]["compatible"] and by_file[name]["answer"] == "another vocabulary"
        assert by_file[name]["warnings"][0].startswith("another vocabulary (vocabulary ")
        assert (
            f"vocabulary sizes 151936 vs {size} (more than 128 apart)" in by_file[name]["reasons"]
        )
    assert qwen_paths[0].name not in by_file, "the main model is not its own candidate"


@pytest.mark.real
def test_cli_compat_with_no_fitting_candidate_says_what_fits(
    qwen_paths, tmp_path, monkeypatch, capsys
):
    """`compat qwen2.5-coder-1.5b gemma-3-270m` said "no other model shares this model's
    vocabulary" though the 0.5B does: it says so in words and names the 0.5B and lookup."""
    for variable, value in {
        "HOME": tmp_path,
        "SPECDEC_MODELS_DIR": qwen_paths[0].parent,
        "HF_HUB_CACHE": tmp_path / "hub",
        "SPECDEC_MODEL_PATH": "",
        "SPECDEC_CACHE_DIR": tmp_path / "cache",
    }.items():
        monkeypatch.setenv(variable, str(value))
    assert cli.main(["compat", "qwen2.5-coder-1.5b", "gemma-3-270m"]) == 0
    report = " ".join(capsys.readouterr().out.split())
    assert "No draft model of the same vocabulary: the one model judged does not share" in report
    assert "Of the other models found, these do: qwen2.5-coder-0.5b;" in report
    assert "draft mode lookup, `prompt-lookup`" in report
    assert "gemma-3-270m: another vocabulary (vocabulary types BPE vs SPM" in report
    assert "no other model shares" not in report
