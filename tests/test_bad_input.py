"""Bad input gets one clear error that names the problem and the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from specdec_jupyter import load
from specdec_jupyter.decoding.drafters import ModelDrafter
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.errors import (
    ContextOverflowError,
    ModelFileError,
    SettingsError,
    SpecDecError,
    UnknownModelError,
)
from specdec_jupyter.settings import RunSettings
from tests.support.recording import RecordingEngine, drain
from tests.support.tiny_models import write_tiny_gguf


def test_a_missing_file_is_named_with_the_fix(tmp_path):
    with pytest.raises(ModelFileError, match="model file not found.*models fetch"):
        load(tmp_path / "nowhere.gguf", progress=False)


def test_a_text_file_named_gguf_is_not_a_gguf_file(tmp_path):
    fake = tmp_path / "notes.gguf"
    fake.write_text("these are my notes, not a model\n")
    with pytest.raises(ModelFileError, match="is not a GGUF file"):
        load(fake, progress=False)
    assert fake.read_text() == "these are my notes, not a model\n", "the user's file is untouched"


def test_a_truncated_gguf_is_reported_as_truncated(tiny_paths, tmp_path):
    whole = tiny_paths[0].read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ModelFileError, match="truncated|cut short"):
        load(cut, n_ctx=64, n_threads=1, progress=False)


def test_a_draft_with_another_vocabulary_loads_and_drafts_text(tiny_paths, tmp_path):
    other = write_tiny_gguf(tmp_path / "other.gguf", vocab="other")
    session = load(tiny_paths[0], draft=other, n_ctx=128, n_threads=1, progress=False)
    assert session.text_level
    result = session.generate("hello", raw=True, max_tokens=8, draft_tokens=2)
    assert result.stats.draft_model == "other" and len(result.events) == 8
    session.close()


def test_an_unusable_draft_is_refused_before_loading(tiny_paths, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_paths[1].read_bytes()[:4096])
    with pytest.raises(ModelFileError, match="cut.gguf"):
        load(tiny_paths[0], draft=cut, n_ctx=64, n_threads=1, progress=False)


def test_a_prompt_longer_than_the_context_is_refused(tiny_paths):
    session = load(*tiny_paths, n_ctx=64, n_threads=1, progress=False)
    with pytest.raises(ContextOverflowError, match="shorten the prompt or .* larger n_ctx"):
        session.generate("hello world " * 100, raw=True)
    assert session.generate("hello", raw=True, max_tokens=3).text, "the session still works"
    session.close()


def test_generation_stops_cleanly_when_the_context_fills(tiny_session):
    """A main model that never ends (its end-of-generation token masked) fills the context."""

    class NeverEnding(RecordingEngine):
        def is_end_of_generation(self, token: int) -> bool:
            return False

    tiny_session.reset()
    main = NeverEnding(tiny_session.main)
    prompt = main.tokenize("hello world")
    generator = speculative_decode(
        main, ModelDrafter(tiny_session.draft), prompt, RunSettings(max_tokens=10_000)
    )
    events, stats = drain(generator)
    assert stats.stop_reason == "contextLengthReached"
    assert len(main.tokens) == main.n_ctx, "every position is used, none beyond"
    assert len(prompt) + len(events) == main.n_ctx + 1, "the last token needs no cache slot"
    result = tiny_session.generate("hello", raw=True, max_tokens=3)
    assert result.stats.predicted_tokens_count == 3, "the session still works"


def test_an_unknown_name_lists_the_catalog():
    with pytest.raises(UnknownModelError, match="qwen2.5-coder-1.5b"):
        load("no-such-model", progress=False)


def test_the_cli_reports_errors_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "specdec_jupyter.cli", "generate", "--main",
         str(tmp_path / "missing.gguf"), "--prompt", "hi"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("error: model file not found")
    assert "Traceback" not in done.stderr


def _cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "specdec_jupyter.cli", "generate", *argv],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_small_context_is_chunked_to_the_batch_llama_cpp_allocated(tiny_paths):
    """llama.cpp caps its batch at the requested context (16) and pads the context (to 256):
    a prompt between the two once aborted the process in GGML_ASSERT."""
    prompt = "hello world " * 20
    done = _cli("--main", str(tiny_paths[0]), "--prompt", prompt, "--raw", "--n-ctx", "16",
                "--max-tokens", "4", "--threads", "1", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr[-500:]
    assert len(json.loads(done.stdout)["tokens"]) >= 1


def test_a_prompt_past_the_allocated_context_is_one_line_not_an_abort(tiny_paths):
    done = _cli("--main", str(tiny_paths[0]), "--prompt", "hello world " * 400, "--raw",
                "--n-ctx", "16", "--threads", "1", "--json")  # fmt: skip
    assert done.returncode == 2, done.stderr[-500:]
    *notes, error = done.stderr.strip().splitlines()  # a note that no draft is remembered
    assert all(note.startswith("note: ") for note in notes)
    assert error.startswith("error: ") and "larger n_ctx" in error
    assert "Traceback" not in done.stderr and "GGML_ASSERT" not in done.stderr


OVERWRITE_LOADED = """
import shutil, sys
from specdec_jupyter import load
from specdec_jupyter.errors import ModelFileError
model = shutil.copy({source!r}, {copy!r})
session = load(model, n_ctx=64, n_threads=1, progress=False)
session.generate("hello", raw=True, max_tokens=2)
with open(model, "r+b") as file:  # rewritten in place, as a copy over the old file does
    file.seek(file.seek(0, 2) // 2)
    file.truncate()
try:
    session.generate("hello again", raw=True, max_tokens=2)
except ModelFileError as error:
    sys.exit(f"refused: {{error}}")
"""


def test_a_model_file_rewritten_after_loading_is_refused_not_a_crash(tiny_paths, tmp_path):
    script = OVERWRITE_LOADED.format(source=str(tiny_paths[0]), copy=str(tmp_path / "m.gguf"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 1, f"rc {done.returncode}: {done.stderr[-300:]}"
    assert "refused: " in done.stderr and "changed on disk since it was loaded" in done.stderr


def test_a_decode_refused_for_its_input_is_not_called_a_full_cache(tiny_paths):
    """Issue 23 T7: status -1 (a bad batch) was reported as "no room in the KV cache"."""
    session = load(tiny_paths[0], n_ctx=64, n_threads=1, progress=False)
    with pytest.raises(SpecDecError, match="status -1 .* refused the batch") as caught:
        session.main.evaluate([10**6], 1)
    assert "KV cache" not in str(caught.value)
    session.close()


def test_a_file_given_to_an_engine_that_runs_no_files_is_named_as_a_file():
    """T7: `/etc/passwd` on the toy engine "is an MLX folder"."""
    with pytest.raises(ModelFileError, match="runs only its own models .* not /etc/passwd"):
        load("/etc/passwd", engine="toy", progress=False)


def test_invalid_utf8_in_a_prompt_is_one_line():
    """Issue 23 T1: invalid UTF-8 in --prompt was a UnicodeEncodeError traceback (and the
    library raised it too)."""
    command = [sys.executable, "-m", "specdec_jupyter.cli", "generate", "--engine", "toy"]
    done = subprocess.run(
        [*command, "--prompt", b"the \xff cat", "--max-tokens", "2"], capture_output=True
    )
    err = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in err
    assert err.startswith("error: the prompt is not valid text: character 4 is '\\udcff'")
    session = load("toy-trigram", progress=False)
    with pytest.raises(SettingsError, match="message 0's content is not valid text"):
        session.generate([{"role": "user", "content": "a\ud800"}])
