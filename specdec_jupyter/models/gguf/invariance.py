"""Which of a GGUF file's matrices llama.cpp's CPU kernels multiply the same way whatever a
call holds: what exact mode (engines/llamacpp.py) needs of a model's weights.

Measured here (x86-64 with AVX-512, llama-cpp-python 0.3.36) on tiny models of each type and on
the Qwen2.5-Coder pair: with weight repacking off and calls of at most 7 tokens, quantized
matrices (K-quants, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) give a position the same logits whether it is
read alone or with up to 6 others, bit for bit. Float matrices do not: from 2 tokens on llamafile's
tinyBLAS multiplies F32, F16 and BF16 weights, summing in another order than the one-token dot
product, which moves logits by 1e-6 to 1e-2.
"""

from __future__ import annotations

from pathlib import Path

from gguf import GGMLQuantizationType

from .header import open_gguf

FLOAT_TYPES = frozenset(
    {GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16}
)


def call_size_dependent(path: Path) -> list[str]:
    """The matrices of `path` whose products change with a call's size: those stored as floats.
    The token embeddings count only when the output layer reuses them (no `output.weight`):
    otherwise they are looked up, not multiplied."""
    tensors = open_gguf(path).tensor_infos
    has_output = any(t.name == "output.weight" for t in tensors)
    return [
        f"{t.name} ({t.ggml_type.name})"
        for t in tensors
        if t.n_dims >= 2
        and t.ggml_type in FLOAT_TYPES
        and not (t.name == "token_embd.weight" and has_output)
    ]
