"""Files on disk made to break discovery and the readers (issue 23 C3, W6, T4, T7): links that
loop or lead to `/`, FIFOs named like models, sparse files, tensor sizes that overflow,
MLX configs of the wrong shape. Each ends in bounded time with a reason, never a traceback."""

from __future__ import annotations

import json
import os

import pytest
from gguf import GGUFReader

from specdec_jupyter import load
from specdec_jupyter.errors import ModelFileError
from specdec_jupyter.models.discovery import MAX_FOLDERS, DiscoveryNote, discover
from specdec_jupyter.models.gguf.check import diagnose_gguf
from specdec_jupyter.models.metadata import read_model_info
from tests.support.model_folders import write_mlx_folder
from tests.support.tiny_models import write_tiny_gguf


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """A folder on SPECDEC_MODEL_PATH in an otherwise empty home."""
    folder = tmp_path / "mine"
    folder.mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPECDEC_MODELS_DIR", str(tmp_path / "ours"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("SPECDEC_MODEL_PATH", str(folder))
    return folder


def test_links_that_loop_are_walked_once(user_folder):
    """Twelve `ln -s . L/lN` took over 60 s: 12^6 paths to the same folder."""
    loops = user_folder / "L"
    loops.mkdir()
    for n in range(12):
        (loops / f"l{n}").symlink_to(".")
    write_tiny_gguf(loops / "m.gguf")
    found = discover()
    assert [m.name for m in found] == ["L/m.gguf"]


def test_a_link_to_the_root_of_the_file_system_is_bounded(user_folder):
    """One link to `/` took over 120 s; the walk now stops at its folder budget, and says so."""
    (user_folder / "everything").symlink_to("/")
    with pytest.warns(DiscoveryNote, match=f"stopped after {MAX_FOLDERS} folders"):
        discover()


def test_fifos_named_like_models_are_never_opened(user_folder):
    """A FIFO named model.safetensors beside config.json never returned; one named .gguf
    neither."""
    mlx = write_mlx_folder(user_folder / "mlx-fifo")
    (mlx / "model.safetensors").unlink()
    os.mkfifo(mlx / "model.safetensors")
    os.mkfifo(user_folder / "pipe.gguf")
    assert discover() == []
    assert "model.safetensors is not a regular file" in read_model_info(mlx).problem
    assert "not a regular file" in read_model_info(user_folder / "pipe.gguf").problem


def test_a_fifo_given_as_a_model_is_named_for_what_it_is(tmp_path):
    """T7: a FIFO "is a folder"."""
    os.mkfifo(tmp_path / "pipe.gguf")
    with pytest.raises(ModelFileError, match="pipe.gguf is not a regular file"):
        load(tmp_path / "pipe.gguf", progress=False)


def test_a_sparse_gguf_is_unusable(tmp_path):
    """A 2 GB sparse GGUF (its header written, its data never) was listed as usable."""
    tiny = write_tiny_gguf(tmp_path / "tiny.gguf").read_bytes()
    sparse = tmp_path / "sparse.gguf"
    with open(sparse, "wb") as handle:
        handle.write(tiny)
        handle.truncate(2 << 30)
    if sparse.stat().st_blocks * 512 >= 1 << 30:
        pytest.skip("this file system writes no sparse files")
    problem = read_model_info(sparse).problem
    assert problem is not None and "sparse file" in problem


def test_tensor_sizes_that_overflow_are_a_damaged_header(tmp_path):
    """W6: listed as usable (the sizes wrapped), then llama.cpp refused it and we blamed the
    architecture ("a newer llama-cpp-python may know this model's architecture")."""
    path = write_tiny_gguf(tmp_path / "overflow.gguf")
    reader = GGUFReader(path, "r+")
    dims = reader.tensors[0].field.parts[3]
    dims[:] = 2**40
    reader.data.flush()
    del reader
    problem = read_model_info(path).problem
    assert problem is not None and "overflows" in problem
    assert "overflows" in diagnose_gguf(path)
    with pytest.raises(ModelFileError, match="overflows"):
        load(path, n_ctx=64, n_threads=1, progress=False)


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"model_type": "qwen2", "quantization": "yes"}, 'has "quantization": yes'),
        ({"model_type": "qwen2", "quantization": {"bits": "4"}}, '"quantization"'),
    ],
)
def test_an_mlx_config_of_the_wrong_shape_is_a_reason(tmp_path, config, reason):
    """T4: `generate --engine mlx` ended in a TypeError traceback from inside mlx-lm."""
    folder = write_mlx_folder(tmp_path / "odd")
    (folder / "config.json").write_text(json.dumps(config))
    assert reason in read_model_info(folder).problem
    pytest.importorskip("mlx_lm")
    with pytest.raises(ModelFileError, match="quantization"):
        load(folder, engine="mlx", progress=False)


def test_a_deeply_nested_mlx_config_is_a_reason(tmp_path):
    """T4: a RecursionError traceback."""
    folder = write_mlx_folder(tmp_path / "deep")
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "nests too deeply" in read_model_info(folder).problem
