"""Load options through the registry: context, threads and GPU layers reach llama.cpp (read
back from the loaded model and context), and GPU layers asked of a build without a GPU are
a one-line note, never a crash. No GPU here: a build that has one is simulated only to see
which layer counts are handed to llama.cpp."""

from __future__ import annotations

import llama_cpp
import pytest

from specdec_jupyter import load
from specdec_jupyter.cli import main as cli
from specdec_jupyter.engines import llamacpp
from specdec_jupyter.engines.registry import EngineNote
from specdec_jupyter.models.gguf import llama_load
from specdec_jupyter.sessions.manager import EngineManager
from specdec_jupyter.sessions.pair import Pair
from specdec_jupyter.settings import LoadOptions


@pytest.fixture
def layers_asked(monkeypatch) -> list[int]:
    """The n_gpu_layers of every full model load, as handed to llama.cpp."""
    asked: list[int] = []
    load_model = llama_cpp.llama_model_load_from_file

    def recording(path, params):
        if not params.vocab_only:
            asked.append(params.n_gpu_layers)
        return load_model(path, params)

    monkeypatch.setattr(llama_cpp, "llama_model_load_from_file", recording)
    return asked


def test_context_and_threads_reach_llama_cpp(tiny_paths):
    session = load(*tiny_paths, n_ctx=512, n_threads=1, progress=False)
    for engine in (session.main, session.draft):
        assert llama_cpp.llama_n_ctx(engine._llama.context) == 512
        assert llama_cpp.llama_n_threads(engine._llama.context) == 1
        assert set(engine.layer_devices.values()) == {"CPU"}  # as llama.cpp placed them
    result = session.generate("hello", raw=True, max_tokens=3)
    assert (
        result.stats.backend
        == "llama.cpp on the CPU, 1 threads; fast (logits vary with a call's size)"
    )
    session.close()


def test_gpu_layers_without_a_gpu_backend_are_a_note(tiny_paths, layers_asked, capsys):
    assert not llamacpp.gpu_offload_supported(), "this test is for the CPU-only build here"
    with pytest.warns(EngineNote, match="no GPU backend, so gpu_layers=8 runs on the CPU"):
        session = load(*tiny_paths, gpu_layers=8, n_ctx=128, progress=False)
    session.close()
    assert layers_asked == [0, 0]
    arguments = ["generate", "--main", str(tiny_paths[0]), "--draft", str(tiny_paths[1])]
    assert cli([*arguments, "--prompt", "hi", "--raw", "--max-tokens", "2", "--gpu-layers", "4",
                "--gpu-layers-draft", "-1", "--n-ctx", "128", "--json"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("note: this llama-cpp-python build has no GPU backend") == 2
    assert "Traceback" not in err


def test_main_and_draft_layers_are_offloaded_separately(tiny_paths, layers_asked, monkeypatch):
    monkeypatch.setattr(llamacpp, "gpu_offload_supported", lambda: True)
    load(*tiny_paths, gpu_layers=2, draft_gpu_layers=0, n_ctx=128, progress=False).close()
    load(*tiny_paths, n_ctx=128, progress=False).close()  # default: all, as LM Studio does
    assert layers_asked == [2, 0, llama_load.MAX_LAYERS, llama_load.MAX_LAYERS]

    manager = EngineManager(n_ctx=128, gpu_layers=1, draft_gpu_layers=-1)
    manager.generate("hi", Pair(tiny_paths[0], tiny_paths[1]), raw=True, max_tokens=2)
    assert layers_asked[4:] == [1, llama_load.MAX_LAYERS]
    manager.close()


def test_options_out_of_range_are_refused_in_words(capsys):
    arguments = ["generate", "--engine", "toy", "--prompt", "the", "--max-tokens", "1"]
    assert cli([*arguments, "--gpu-layers", "-3"]) == 2
    assert capsys.readouterr().err.startswith("error: gpu_layers must be -1 (all), 0 (none)")
    with pytest.raises(ValueError, match="gpu_layers must be -1 .all., 0 .none."):
        LoadOptions(gpu_layers=-2)
    with pytest.raises(ValueError, match="n_threads must be at least 1 and at most 512"):
        LoadOptions(n_threads=0)
    with pytest.raises(ValueError, match="n_ctx must be a positive number"):
        LoadOptions(n_ctx=0)
