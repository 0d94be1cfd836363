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
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .metadata import read_model_info
from .mlx.metadata import CONFIG
from .model_info import ModelInfo
from .paths import models_dir

MAX_DEPTH = 6  # below a root: deep enough for every layout above, bounded on a big folder
MAX_FOLDERS = 5000  # in one discovery: hundreds of models' folders, not a whole file system
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
    """Every model under every root, each with its facts or the reason it is unusable. The
    walk is bounded (see `Walk`): links that loop, a link to `/`, a FIFO named like a model
    all end it in bounded time; where it stopped short, a note says so."""
    found: list[DiscoveredModel] = []
    seen: set[str] = set()
    walk = Walk()
    for root in model_roots(extra):
        for path in walk.model_paths(root.path):
            real = os.path.realpath(path)
            if real not in seen:
                seen.add(real)
                found.append(DiscoveredModel(_name(root, path), root.source, read_model_info(path)))
    if walk.cut_short:
        warnings.warn(
            DiscoveryNote(
                f"model discovery stopped after {MAX_FOLDERS} folders ({walk.cut_short}); "
                "name the folders that hold models (SPECDEC_MODEL_PATH, or the folders given)"
            ),
            stacklevel=2,
        )
    return found


class DiscoveryNote(UserWarning):
    """Discovery looked at fewer folders than a root holds."""


class Walk:
    """One bounded walk over the roots of a discovery: each real folder is entered once (a
    link back up, or to `/`, is not walked again), at most MAX_DEPTH below a root and
    MAX_FOLDERS in all, and only regular files count as models (a FIFO or a device is never
    opened). `cut_short` names the root where the folder budget ran out."""

    def __init__(self) -> None:
        self.visited: set[tuple[int, int]] = set()
        self.folders = 0
        self.cut_short = ""

    def model_paths(self, root: Path) -> Iterator[Path]:
        """GGUF files and MLX folders under `root`, in a stable order; none if it is missing."""
        if root.is_file():
            yield root
            return
        yield from self._walk(root, root, 0)

    def _walk(self, root: Path, folder: Path, depth: int) -> Iterator[Path]:
        try:
            status = folder.stat()
        except OSError:
            return
        identity = (status.st_dev, status.st_ino)
        if identity in self.visited:
            return
        if self.folders >= MAX_FOLDERS:
            self.cut_short = self.cut_short or str(root)
            return
        self.visited.add(identity)
        self.folders += 1
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            return
        files = {entry.name for entry in entries if _is_file(entry)}
        if CONFIG in files and any(name.endswith(".safetensors") for name in files):
            yield folder
        for name in sorted(files):
            is_gguf = name.lower().endswith(".gguf") and not name.startswith(".")
            if is_gguf and not LATER_SPLIT_PART.search(name):
                yield folder / name
        if depth >= MAX_DEPTH:
            return
        for entry in entries:
            skipped = entry.name.startswith(".") or entry.name in SKIPPED_FOLDERS
            if not skipped and _is_folder(entry):
                yield from self._walk(root, folder / entry.name, depth + 1)


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()  # follows links; False for a FIFO, a socket, a device
    except OSError:
        return False


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _name(root: ModelRoot, path: Path) -> str:
    if path == root.path:
        return path.name
    relative = path.relative_to(root.path).as_posix()
    snapshot = HUB_SNAPSHOT.match(relative) if root.source == "huggingface" else None
    if snapshot:
        repo = snapshot["repo"].replace("--", "/")
        return f"{repo}/{snapshot['rest']}" if snapshot["rest"] else repo
    return relative
