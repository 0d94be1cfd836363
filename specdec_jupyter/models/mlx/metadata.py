"""An MLX model folder's facts, from config.json, the tokenizer files and the safetensors headers.

An MLX folder is what mlx-lm loads: config.json, model*.safetensors and the
tokenizer files. The vocabulary size reported is the tokenizer's `vocab_size` as
transformers counts it (the model's vocabulary without added tokens), because
that is what LM Studio's mlx-engine compares before it lets one model draft for
another.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ...errors import UnusableModelError
from ..model_info import ModelInfo, size_label
from ..paths import not_a_file

CONFIG = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer.model")
MAX_SAFETENSORS_HEADER = 100 << 20  # a larger header length means a damaged file
# transformers' tokenizer model types, named as llama.cpp names vocabulary types
VOCAB_TYPES = {"BPE": "BPE", "Unigram": "UGM", "WordPiece": "WPM"}


def read_mlx_info(folder: Path) -> ModelInfo:
    """The listing facts of an MLX folder; raises UnusableModelError saying why it cannot run."""
    if not any(folder.iterdir()):
        raise UnusableModelError(folder, "the folder is empty")
    if not (folder / CONFIG).is_file():
        raise UnusableModelError(
            folder,
            f"not a model folder: it has no {CONFIG} (an MLX model folder holds {CONFIG}, "
            "*.safetensors and the tokenizer files; llama.cpp needs a .gguf file)",
        )
    config = _json(folder, CONFIG)
    weights = sorted(folder.glob("*.safetensors"))
    odd = [path.name for path in weights if not_a_file(path)]
    if odd:
        raise UnusableModelError(folder, f"its {odd[0]} {not_a_file(folder / odd[0])}")
    if not weights:
        raise UnusableModelError(folder, "it has no *.safetensors weights next to config.json")
    vocab_type, vocab_size = _tokenizer_vocabulary(folder, config)
    tokenizer_config = (
        _json(folder, "tokenizer_config.json")
        if (folder / "tokenizer_config.json").is_file()
        else {}
    )
    quantization = _quantization(folder, config)
    parameters = sum(_safetensors_parameters(path, quantization.get("bits")) for path in weights)
    return ModelInfo(
        path=folder,
        format="mlx",
        size_bytes=sum(path.stat().st_size for path in weights),
        architecture=config.get("model_type"),
        parameters=parameters,
        size_label=size_label(parameters),
        quantization=(f"{quantization['bits']}-bit" if "bits" in quantization else _dtype(config)),
        context_length=config.get("max_position_embeddings"),
        vocab_type=vocab_type,
        vocab_size=vocab_size,
        bos_id=_first(config.get("bos_token_id")),
        eos_id=_first(config.get("eos_token_id")),
        add_bos=tokenizer_config.get("add_bos_token"),
        add_eos=tokenizer_config.get("add_eos_token"),
    )


def _quantization(folder: Path, config: dict[str, Any]) -> dict[str, Any]:
    """config.json's `quantization` (mlx-lm's {"group_size", "bits"}), checked: mlx-lm
    would fail on another shape with a TypeError."""
    quantization = config.get("quantization") or {}
    bits = quantization.get("bits") if isinstance(quantization, dict) else None
    if not isinstance(quantization, dict) or (
        "bits" in quantization and (type(bits) is not int or not 1 <= bits <= 32)
    ):
        raise UnusableModelError(
            folder,
            f'its {CONFIG} has "quantization": {str(quantization)[:40]}, not mlx-lm\'s '
            '{"group_size": N, "bits": 2..8}',
        )
    return quantization


def _tokenizer_vocabulary(folder: Path, config: dict[str, Any]) -> tuple[str | None, int | None]:
    """(vocabulary type, size without added tokens) from whichever tokenizer file is there."""
    if (folder / "tokenizer.json").is_file():
        model = _json(folder, "tokenizer.json").get("model") or {}
        vocab = model.get("vocab")
        if vocab is None:
            raise UnusableModelError(folder, "its tokenizer.json has no model vocabulary")
        return VOCAB_TYPES.get(model.get("type"), model.get("type")), len(vocab)
    if (folder / "vocab.json").is_file():
        return "BPE", len(_json(folder, "vocab.json"))
    if (folder / "tokenizer.model").is_file():  # sentencepiece: as many pieces as embeddings
        return "SPM", config.get("vocab_size")
    raise UnusableModelError(
        folder,
        f"it has no tokenizer ({', '.join(TOKENIZER_FILES)}); "
        "copy the tokenizer files of the original model next to config.json",
    )


def _safetensors_parameters(path: Path, bits: int | None) -> int:
    """Parameters stored in one safetensors file, counting packed quantized weights as
    32 / bits values per uint32 and leaving out their scales and biases."""
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if not 0 < length <= MAX_SAFETENSORS_HEADER:
            raise UnusableModelError(path, "its safetensors header is damaged")
        try:
            header = json.loads(handle.read(length))
        except ValueError as exc:
            raise UnusableModelError(path, f"its safetensors header is damaged ({exc})") from exc
    total = 0
    for name, tensor in header.items():
        if name == "__metadata__" or (bits and name.endswith((".scales", ".biases"))):
            continue
        count = math.prod(tensor.get("shape", ()))
        total += count * 32 // bits if bits and tensor.get("dtype") == "U32" else count
    return total


def _json(folder: Path, name: str) -> dict[str, Any]:
    reason = not_a_file(folder / name)
    if reason is not None:
        raise UnusableModelError(folder, f"its {name} {reason}")
    try:
        content = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnusableModelError(folder, f"its {name} cannot be read ({exc})") from exc
    except RecursionError:
        raise UnusableModelError(folder, f"its {name} nests too deeply to be a config") from None
    if not isinstance(content, dict):
        raise UnusableModelError(folder, f"its {name} is not a JSON object")
    return content


def _dtype(config: dict[str, Any]) -> str | None:
    return config.get("torch_dtype") or config.get("dtype")


def _first(value: int | list[int] | None) -> int | None:
    """config.json may list several EOS ids; the first is the one tokenizers add."""
    if isinstance(value, list):
        return value[0] if value else None
    return value
