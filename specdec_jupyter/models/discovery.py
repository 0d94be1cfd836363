"""Finding models where users already keep them.

Roots, in order: our models folder (`$SPECDEC_MODELS_DIR`), folders the user
names (`$SPECDEC_MODEL_PATH`, separated like PATH, or passed in), LM Studio's
model folders (`~/.lmstudio/models/<publisher>/<repo>/`, formerly
`~/.cache/lm-studio/models`), and the Hugging Face hub cache
(`models--org--name/snapshots/<revision>/`). A model is a `.gguf` file (the first
part of a split one) or an MLX folder (config.json beside *.safetensors). The same
file reached twice (a hub snapshot link, a folder named twice) is listed once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .metadata import read_model_info
from .mlx.metadata import CONFIG
from .model_info import ModelInfo
from .paths import models_dir

MAX_DEPTH = 6  # below a root: deep enough for every layout above, bounded on a big folder
SKIPPED_FOLDERS = {"blobs", "node_modules", "__pycache__"}
LATER_SPLIT_PART = re.compile(r"-(?!00001)\d{5}-of-\d{5}\.gguf$", re.IGNORECASE)
HUB_SNAPSHOT = re.compile(r"^models--(?P<repo>.+?)/snapshots/[^/]+(?:/(?P<rest>.*))?$")


@dataclass(frozen=True)
class ModelRoot:
    source: str  # "specdec", "user", "lmstudio" or "huggingface"
    path: Path


@dataclass(frozen=True)
class DiscoveredModel:
    name: str  # how listings show it, e.g. "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/q4.gguf"
    source: str
    info: ModelInfo

    @property
    def path(self) -> Path:
        return self.info.path

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source, **self.info.to_dict()}


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, found as huggingface_hub finds it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "huggingface" / "hub"


def model_roots(extra: Sequence[str | os.PathLike[str]] = ()) -> list[ModelRoot]:
    named = [p for p in os.environ.get("SPECDEC_MODEL_PATH", "").split(os.pathsep) if p]
    home = Path.home()
    return [
        ModelRoot("specdec", models_dir()),
        *(ModelRoot("user", Path(p).expanduser()) for p in [*named, *extra]),
        ModelRoot("lmstudio", home / ".lmstudio" / "models"),
        ModelRoot("lmstudio", home / ".cache" / "lm-studio" / "models"),
        ModelRoot("huggingface", hub_cache_dir()),
    ]


def discover(extra: Sequence[str | os.PathLike[str]] = ()) -> list[DiscoveredModel]:
    """Every model under every root, each with its facts or the reason it is unusable."""
    found: list[DiscoveredModel] = []
    seen: set[str] = set()
    for root in model_roots(extra):
        for path in model_paths(root.path):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                found.append(DiscoveredModel(_name(root, path), root.source, read_model_info(path)))
    return found


def model_paths(root: Path) -> Iterator[Path]:
    """GGUF files and MLX folders under `root`, in a stable order; nothing if it is missing."""
    if root.is_file():
        yield root
        return
    for folder, subfolders, files in os.walk(root, followlinks=True):
        depth = len(Path(folder).relative_to(root).parts)
        subfolders[:] = sorted(
            name
            for name in subfolders
            if depth < MAX_DEPTH and not name.startswith(".") and name not in SKIPPED_FOLDERS
        )
        if CONFIG in files and any(name.endswith(".safetensors") for name in files):
            yield Path(folder)
        for name in sorted(files):
            is_gguf = name.lower().endswith(".gguf") and not name.startswith(".")
            if is_gguf and not LATER_SPLIT_PART.search(name):
                yield Path(folder) / name


def _name(root: ModelRoot, path: Path) -> str:
    if path == root.path:
        return path.name
    relative = path.relative_to(root.path).as_posix()
    snapshot = HUB_SNAPSHOT.match(relative) if root.source == "huggingface" else None
    if snapshot:
        repo = snapshot["repo"].replace("--", "/")
        return f"{repo}/{snapshot['rest']}" if snapshot["rest"] else repo
    return relative
