"""GGUF -> MLX: an mlx-lm model folder from a GGUF file, so one model runs on both engines.

mlx-lm loads only safetensors folders, and `mx.load` keeps only some GGUF
quantizations; so every tensor is dequantized with the gguf package, renamed to
the Hugging Face names mlx-lm's model classes expect (shaped as the model's own
parameters, which also checks them), loaded into the mlx-lm model and quantized
there with mlx-lm's own quantizer. The tokenizer is rebuilt from the GGUF
vocabulary (models/gguf/tokenizer.py); the tokens that end a generation are the ones
llama.cpp ends on for this file. The folder is written under a hidden name
beside the target and renamed when complete, so a folder under the final name
is always a whole model. Progress is reported as `Progress("converting", ...)`: one step
per tensor, and a last one for quantizing and writing the folder (progress.py).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlx.core as mx
import numpy as np
from gguf.quants import dequantize
from mlx.utils import tree_flatten
from mlx_lm.utils import quantize_model, save_config, save_model

from ...errors import ModelFileError
from ...progress import Tracker
from ..gguf.header import GGUFHeader, TensorInfo, open_gguf
from ..gguf.llama_load import end_of_generation_ids
from ..gguf.tokenizer import GGUFVocabulary, build_tokenizer
from ..names import short_name

SUPPORTED_ARCHITECTURES = ("qwen2", "llama")
QUANTIZED_BITS = (4, 8)
FLOAT_BITS = {16: mx.bfloat16, 32: mx.float32}  # bf16: the dtype Qwen and Llama ship in
GROUP_SIZE = 64  # mlx-lm's default for affine quantization

_GLOBAL_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_BLOCK_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


def convert_gguf_to_mlx(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    bits: int = 4,
) -> Path:
    """Write the mlx-lm folder `out` for the GGUF file `source` and return its path.

    `bits` 4 or 8 quantizes (affine, group size 64, as mlx-lm's convert does);
    16 keeps bfloat16 and 32 float32 weights. An existing `out` is an error. How far it
    is goes to the caller's progress listener (progress.py), if any.
    """
    source, out = Path(source), Path(out)
    if bits not in (*QUANTIZED_BITS, *FLOAT_BITS):
        raise ValueError(f"bits must be one of {(*QUANTIZED_BITS, *FLOAT_BITS)}, got {bits}")
    if out.exists():
        raise FileExistsError(f"{out} already exists; remove it or choose another --out")
    return _convert(source, out, bits)


def _convert(source: Path, out: Path, bits: int) -> Path:
    """`convert_gguf_to_mlx` once its arguments are checked."""
    header = open_gguf(source)
    config = _config(header, end_of_generation_ids(source))
    module = importlib.import_module(f"mlx_lm.models.{config['model_type']}")
    model = module.Model(module.ModelArgs.from_dict(config))
    shapes = {name: value.shape for name, value in tree_flatten(model.parameters())}
    dtype = FLOAT_BITS.get(bits, mx.bfloat16)  # quantized from bfloat16, as mlx-lm's convert
    tracker = Tracker("converting", short_name(source), len(header.tensor_infos) + 1)
    model.load_weights(list(_weights(header, config, shapes, dtype, tracker)), strict=True)
    if bits in QUANTIZED_BITS:
        with contextlib.redirect_stdout(io.StringIO()):  # mlx-lm prints bits per weight
            model, config = quantize_model(model, config, group_size=GROUP_SIZE, bits=bits)
    mx.eval(model.parameters())
    tokenizer = build_tokenizer(_vocabulary(header))

    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)  # left by a killed run of this process id
    partial.mkdir(parents=True)
    try:
        save_model(partial, model)
        save_config(config, partial / "config.json")
        tokenizer.save_pretrained(partial)
        os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    tracker.finish()
    return out


def _config(header: GGUFHeader, eog_ids: list[int]) -> dict:
    """The Hugging Face config.json mlx-lm builds the model from, out of GGUF metadata."""
    arch = header.value("general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise ModelFileError(
            f"converting architecture {arch!r} is not supported; convert-mlx handles "
            + ", ".join(SUPPORTED_ARCHITECTURES)
        )
    if header.value(f"{arch}.rope.scaling.type") not in (None, "none"):
        raise ModelFileError("converting a model with rope scaling is not supported")

    def meta(key: str, default: object = None) -> object:
        value = header.value(f"{arch}.{key}")
        if value is None and default is None:
            raise ModelFileError(f"the GGUF file has no {arch}.{key}; it cannot be converted")
        return default if value is None else value

    tensors = {t.name: t for t in header.tensor_infos}
    hidden = int(meta("embedding_length"))
    eos = header.value("tokenizer.ggml.eos_token_id")
    return {
        "model_type": arch,
        "hidden_size": hidden,
        "num_hidden_layers": meta("block_count"),
        "intermediate_size": meta("feed_forward_length"),
        "num_attention_heads": meta("attention.head_count"),
        "num_key_value_heads": meta("attention.head_count_kv"),
        "rms_norm_eps": meta("attention.layer_norm_rms_epsilon"),
        "rope_theta": meta("rope.freq_base", 10000.0),
        "max_position_embeddings": meta("context_length"),
        "vocab_size": tensors["token_embd.weight"].n_elements // hidden,
        "tie_word_embeddings": "output.weight" not in tensors,
        "attention_bias": "blk.0.attn_q.bias" in tensors,
        "bos_token_id": header.value("tokenizer.ggml.bos_token_id"),
        # the file's EOS first: it is the one a tokenizer appends
        "eos_token_id": sorted(eog_ids, key=lambda i: i != eos),
    }


def _weights(
    header: GGUFHeader,
    config: dict,
    shapes: dict[str, tuple[int, ...]],
    dtype: mx.Dtype,
    tracker: Tracker,
) -> Iterator[tuple[str, mx.array]]:
    """Every tensor dequantized to `dtype`, under its Hugging Face name and in its shape,
    each one a step of `tracker`."""
    heads = {"attn_q": config["num_attention_heads"], "attn_k": config["num_key_value_heads"]}
    permuted = config["model_type"] == "llama"
    for tensor in header.tensor_infos:
        name, kind = _hf_name(tensor.name)
        shape = shapes.get(name)
        if shape is None or np.prod(shape) != tensor.n_elements:
            raise ModelFileError(
                f"tensor {tensor.name} ({tensor.n_elements} values) does not fit {name} "
                f"of the mlx-lm {config['model_type']} model ({shape})"
            )
        values = _dequantized(header, tensor, shape)
        if permuted and kind in heads:
            values = _unpermute(values, heads[kind])
        yield name, mx.array(values, dtype=dtype)
        tracker.advance(1)


def _hf_name(gguf_name: str) -> tuple[str, str]:
    """'blk.3.attn_q.weight' -> ('model.layers.3.self_attn.q_proj.weight', 'attn_q')."""
    stem, suffix = gguf_name.rsplit(".", 1)
    parts = stem.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in _BLOCK_NAMES:
        return f"model.layers.{parts[1]}.{_BLOCK_NAMES[parts[2]]}.{suffix}", parts[2]
    if stem in _GLOBAL_NAMES:
        return f"{_GLOBAL_NAMES[stem]}.{suffix}", stem
    raise ModelFileError(f"tensor {gguf_name} has no counterpart in an mlx-lm model")


def _dequantized(header: GGUFHeader, tensor: TensorInfo, shape: tuple[int, ...]) -> np.ndarray:
    raw = header.data[tensor.offset : tensor.offset + tensor.n_bytes]
    rows = shape[0] if len(shape) > 1 else 1
    values = dequantize(np.asarray(raw).reshape(rows, -1), tensor.ggml_type)
    return np.ascontiguousarray(values, dtype=np.float32).reshape(shape)


def _unpermute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Undo the row order llama.cpp's converter gives Llama's Q and K (for its rope layout)."""
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, rows // n_head // 2, 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _vocabulary(header: GGUFHeader) -> GGUFVocabulary:
    def number(key: str) -> int | None:
        field = header.fields.get(f"tokenizer.ggml.{key}")
        return None if field is None else field.contents()

    return GGUFVocabulary(
        model=str(header.value("tokenizer.ggml.model")),
        pre=str(header.value("tokenizer.ggml.pre") or "default"),
        tokens=header.strings("tokenizer.ggml.tokens"),
        token_types=number("token_type") or [],
        merges=header.strings("tokenizer.ggml.merges"),
        bos_id=number("bos_token_id"),
        eos_id=number("eos_token_id"),
        pad_id=number("padding_token_id"),
        add_bos=bool(number("add_bos_token")),
        chat_template=header.value("tokenizer.chat_template"),
    )
