"""The converted Qwen2.5-Coder pair on MLX, against mlx-lm's own speculative decoding."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from specdec_jupyter.decoding.drafters import ModelDrafter
from specdec_jupyter.decoding.loop import speculative_decode
from specdec_jupyter.engines.llamacpp import LlamaCppEngine
from specdec_jupyter.engines.mlx import MlxEngine
from specdec_jupyter.models.catalog import CATALOG
from specdec_jupyter.models.mlx.catalog import catalog_mlx_model
from specdec_jupyter.settings import RunSettings
from tests.support import ROOT
from tests.support.real_models import SEED_PROMPTS, catalog_file
from tests.support.recording import RecordingEngine, drain

pytestmark = pytest.mark.real

NATIVE = ROOT / "tests" / "support" / "mlx_native.py"
PROMPT = "# Quicksort in Python\ndef quicksort(arr):\n"  # raw text: a short prefill on a slow CPU
K = 2  # mlx-lm's default num_draft_tokens
COMPARED = 64


@pytest.fixture(scope="module")
def mlx_qwen_dirs() -> tuple[Path, Path]:
    """The MLX conversions of the pair (CI's setup makes them; else made here, once)."""
    keys = ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b")
    return tuple(catalog_mlx_model(CATALOG[key]) for key in keys)


def test_our_loop_matches_mlx_lms_own_speculative_decoding(mlx_qwen_dirs, capsys):
    """Greedy, k = 2: the same tokens and the same provenance (draft or main) as mlx-lm's
    `stream_generate(..., draft_model=..., num_draft_tokens=2)` for 64 tokens."""
    main_dir, draft_dir = map(str, mlx_qwen_dirs)
    main, draft = MlxEngine(main_dir), MlxEngine(draft_dir)
    prompt = main.tokenize(PROMPT)
    # Both loops stop drafting k tokens only past the compared tokens.
    arguments = [main_dir, draft_dir, json.dumps(prompt), str(K), str(COMPARED + K)]
    child = subprocess.Popen(
        [sys.executable, str(NATIVE), *arguments], stdout=subprocess.PIPE, text=True
    )
    try:
        recorded = RecordingEngine(main)
        settings = RunSettings(max_tokens=1 + COMPARED + K, draft_tokens=K)
        events, _ = drain(speculative_decode(recorded, ModelDrafter(draft), prompt, settings))
        theirs = json.loads(child.communicate(timeout=1200)[0])
    finally:
        child.kill()
    assert child.returncode == 0

    for offset, event in enumerate(events):
        assert event.token_id == int(recorded.predicted[len(prompt) + offset].argmax())
    assert events[0].token_id == theirs["first"], "the same first token from the prefill"
    ours = events[1 : 1 + COMPARED]
    assert len(ours) == COMPARED and len(theirs["tokens"]) >= COMPARED
    assert [e.token_id for e in ours] == theirs["tokens"][:COMPARED]
    assert [e.source == "draft" for e in ours] == theirs["from_draft"][:COMPARED]
    accepted = sum(theirs["from_draft"][:COMPARED])
    assert accepted > 0
    with capsys.disabled():
        print(f"\nmlx-lm vs ours, k={K}: {COMPARED}/{COMPARED} tokens and sources agree, "
              f"{accepted} from the draft")  # fmt: skip
    main.close()
    draft.close()


def test_the_converted_draft_reads_and_predicts_as_its_gguf_original(mlx_qwen_dirs):
    """Qwen2 (biases, no Q/K reordering) converted from Q4_K_M and quantized again to MLX's
    4 bits: the same tokens and facts, and nearly the same predictions."""
    mlx = MlxEngine(mlx_qwen_dirs[1])
    llama = LlamaCppEngine(catalog_file("qwen2.5-coder-0.5b"), n_ctx=256)
    messages = [{"role": "user", "content": SEED_PROMPTS[0]}]
    assert mlx.chat_tokens(messages) == llama.chat_tokens(messages)
    ours, theirs = mlx.vocabulary(), llama.vocabulary()
    assert ours.token_texts == theirs.token_texts
    assert (ours.size, ours.bos_id, ours.eos_id) == (theirs.size, theirs.bos_id, theirs.eos_id)
    ending = [i for i in range(mlx.n_vocab) if mlx.is_end_of_generation(i)]
    assert ending == [i for i in range(llama.n_vocab) if llama.is_end_of_generation(i)]
    tokens = mlx.tokenize(PROMPT)
    assert tokens == llama.tokenize(PROMPT)
    a, b = mlx.evaluate(tokens, len(tokens)), llama.evaluate(tokens, len(tokens))
    assert (a.argmax(axis=1) == b.argmax(axis=1)).mean() >= 0.75
    assert min(np.corrcoef(x, y)[0, 1] for x, y in zip(a, b, strict=True)) > 0.9
    mlx.close()
    llama.close()
