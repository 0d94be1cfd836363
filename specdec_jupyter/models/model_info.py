"""What a listing shows about one model, read from its file or folder without loading weights."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

ModelFormat = Literal["gguf", "mlx"]


@dataclass(frozen=True)
class ModelInfo:
    """One model's facts; `problem` says why it is unusable (then most facts are None)."""

    path: Path
    format: ModelFormat
    size_bytes: int
    architecture: str | None = None
    parameters: int | None = None  # counted from the tensors stored in the file
    size_label: str | None = None  # the publisher's label ("1.5B"), else from `parameters`
    quantization: str | None = None
    context_length: int | None = None
    vocab_type: str | None = None
    vocab_size: int | None = None
    bos_id: int | None = None
    eos_id: int | None = None
    add_bos: bool | None = None
    add_eos: bool | None = None
    problem: str | None = None

    @property
    def usable(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def size_label(parameters: int) -> str:
    """1543714304 -> '1.5B', 494032768 -> '494M', as model publishers write it."""
    if parameters >= 1e9:
        return f"{parameters / 1e9:.1f}B"
    if parameters >= 1e6:
        return f"{parameters / 1e6:.0f}M"
    return f"{parameters / 1e3:.0f}K"
