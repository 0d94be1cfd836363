"""Model folders as users have them, in miniature: MLX folders, damaged files, store layouts.

MLX folders hold a config.json, a safetensors file whose header is real (its data
is never read) and, unless left out, a tokenizer.json with `vocab_size` entries.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path


def write_mlx_folder(
    folder: Path, *, vocab_size: int = 300, tokenizer: bool = True, bits: int | None = 4
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "qwen2", "vocab_size": vocab_size, "max_position_embeddings": 4096}
    if bits:
        config["quantization"] = {"bits": bits, "group_size": 64}
    (folder / "config.json").write_text(json.dumps(config))
    header = {
        "model.embed_tokens.weight": {"dtype": "U32", "shape": [vocab_size, 8]},
        "model.embed_tokens.scales": {"dtype": "F16", "shape": [vocab_size, 1]},
        "__metadata__": {"format": "mlx"},
    }
    encoded = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(encoded)) + encoded)
    if tokenizer:
        vocab = {f"t{i}": i for i in range(vocab_size)}
        tokenizer_json = {"model": {"type": "BPE", "vocab": vocab, "merges": []}}
        (folder / "tokenizer.json").write_text(json.dumps(tokenizer_json))
        (folder / "tokenizer_config.json").write_text(json.dumps({"add_bos_token": False}))
    return folder


def write_damaged_files(folder: Path, good_gguf: Path) -> dict[str, Path]:
    """Every way a model file in a user's folder can be unusable, keyed by what is wrong."""
    folder.mkdir(parents=True, exist_ok=True)
    whole = good_gguf.read_bytes()
    files = {
        "corrupt header": folder / "corrupt.gguf",
        "truncated": folder / "truncated.gguf",
        "text file": folder / "notes.gguf",
        "empty file": folder / "empty.gguf",
    }
    files["corrupt header"].write_bytes(whole[:8] + b"\xff" * 64 + whole[72:4096])
    files["truncated"].write_bytes(whole[: len(whole) // 2])
    files["text file"].write_text("these are my notes, not a model\n")
    files["empty file"].write_bytes(b"")
    files["no tokenizer"] = write_mlx_folder(folder / "mlx-without-tokenizer", tokenizer=False)
    return files
