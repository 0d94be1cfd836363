"""Models by their model-hub names, as llama.cpp's `-hf` takes them: `owner/repo:QUANT`
(`Qwen/Qwen2.5-7B-Instruct-GGUF:Q4_K_M`; Q4_K_M when no quant is given), and the seed's
pairs by short names (`llama-3.1-8b-pair`), so a user with a hub types a name and gets a
main model and a draft that shares its vocabulary.

A repository holds a GGUF file per quant, sometimes split in parts (`-00001-of-00003.gguf`,
which llama.cpp opens from the first part), and a vision projector (`mmproj-*`) that is not
the model. `choose_files` picks the model's file(s); a `HubFiles` lists and downloads them:
the hub itself (huggingface_hub), or a local folder laid out as the hub (`owner/repo/file`),
a mirror for machines that reach no hub. Files land in the models folder under their own
names, where discovery finds them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import FetchError, UnknownModelError
from .paths import models_dir

DEFAULT_QUANT = "Q4_K_M"
_PART = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)

# The seed's pairs by their hub names: main model, then a draft of the same vocabulary.
HUB_MODELS: dict[str, str] = {
    "llama-3.1-8b": "bartowski/Meta-Llama-3.1-8B-Instruct-GGUF:Q4_K_M",
    "llama-3.2-1b": "bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
    "qwen2.5-14b": "Qwen/Qwen2.5-14B-Instruct-GGUF:Q4_K_M",
    "qwen2.5-0.5b": "Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M",
    "deepseek-r1-distill-qwen-32b": "bartowski/DeepSeek-R1-Distill-Qwen-32B-GGUF:Q4_K_M",
    "deepseek-r1-distill-qwen-1.5b": "bartowski/DeepSeek-R1-Distill-Qwen-1.5B-GGUF:Q4_K_M",
}
HUB_PAIRS: dict[str, tuple[str, str]] = {
    "llama-3.1-8b-pair": ("llama-3.1-8b", "llama-3.2-1b"),
    "qwen2.5-14b-pair": ("qwen2.5-14b", "qwen2.5-0.5b"),
    "deepseek-r1-distill-qwen-32b-pair": (
        "deepseek-r1-distill-qwen-32b",
        "deepseek-r1-distill-qwen-1.5b",
    ),
}


@dataclass(frozen=True)
class HubName:
    repo: str  # owner/name
    quant: str

    def __str__(self) -> str:
        return f"{self.repo}:{self.quant}"


def is_hub_name(text: str) -> bool:
    """A hub name has an owner and a repository (`owner/repo[:QUANT]`), or is one the seed's
    pairs name; a catalog name or a path is neither."""
    if text in HUB_MODELS or text in HUB_PAIRS:
        return True
    repo = text.partition(":")[0]
    return repo.count("/") == 1 and not Path(text).exists() and all(repo.split("/"))


def hub_names(text: str) -> list[HubName]:
    """The hub models `text` names: a pair's two, a seed model's, or `owner/repo[:QUANT]`."""
    if text in HUB_PAIRS:
        return [parse(HUB_MODELS[key]) for key in HUB_PAIRS[text]]
    return [parse(HUB_MODELS.get(text, text))]


def parse(text: str) -> HubName:
    repo, _, quant = text.partition(":")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise UnknownModelError(
            f"{text!r} is not a hub name: write owner/repo[:QUANT], as in "
            f"Qwen/Qwen2.5-7B-Instruct-GGUF:{DEFAULT_QUANT}"
        )
    return HubName(repo, quant or DEFAULT_QUANT)


def choose_files(files: Sequence[str], name: HubName) -> list[str]:
    """The repository's GGUF file(s) of `name.quant`: one file, or every part of a split one
    in order (the first is what llama.cpp opens); a vision projector is not the model."""
    quant = re.compile(rf"(^|[^A-Za-z0-9]){re.escape(name.quant)}([^A-Za-z0-9]|$)", re.I)
    matching = [
        f
        for f in files
        if f.lower().endswith(".gguf")
        and quant.search(Path(f).name)
        and not Path(f).name.lower().startswith("mmproj")
    ]
    if not matching:
        quants = sorted({q for f in files for q in _quants(f)})
        raise FetchError(
            f"{name.repo} has no {name.quant} GGUF file; it has "
            f"{', '.join(quants) or 'no GGUF files'}"
        )
    whole = [f for f in matching if not _PART.search(f)]
    if whole:
        return [min(whole, key=len)]  # one file: the plainest name of that quant
    first = min(matching)
    total = int(_PART.search(first).group(2))  # type: ignore[union-attr]
    parts = sorted(f for f in matching if _PART.sub("", f) == _PART.sub("", first))
    if len(parts) != total:
        raise FetchError(f"{name.repo}: {first} is split in {total} parts; {len(parts)} found")
    return parts


def _quants(filename: str) -> list[str]:
    """The quant a GGUF file's name gives (Q4_K_M, Q8_0, IQ3_XS, F16, BF16...)."""
    found = re.findall(r"(?<![A-Za-z0-9])(I?Q\d[A-Z0-9_]*|BF16|F16|F32)(?![A-Za-z0-9])", filename)
    return [_PART.sub("", q) for q in found if filename.lower().endswith(".gguf")]


class HubFiles(Protocol):
    """Where hub repositories are read from: the hub, or a folder laid out as it."""

    def files(self, repo: str) -> list[str]: ...

    def download(self, repo: str, filename: str, into: Path) -> Path: ...


class ModelHub:
    """The model hub itself, through huggingface_hub (its cache and token as configured)."""

    def files(self, repo: str) -> list[str]:
        from huggingface_hub import list_repo_files

        try:
            return list_repo_files(repo)
        except Exception as exc:  # the hub's own errors: not found, gated, offline
            raise FetchError(f"cannot list {repo} on the model hub: {exc}") from None

    def download(self, repo: str, filename: str, into: Path) -> Path:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, filename, local_dir=into))


class HubMirror:
    """A folder laid out as the hub (`owner/repo/<files>`): a mirror on a machine that
    reaches no hub."""

    def __init__(self, folder: Path):
        self.folder = folder

    def files(self, repo: str) -> list[str]:
        root = self.folder / repo
        if not root.is_dir():
            raise FetchError(f"{repo} is not in the mirror at {self.folder}")
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def download(self, repo: str, filename: str, into: Path) -> Path:
        into.mkdir(parents=True, exist_ok=True)
        target = into / Path(filename).name
        partial = target.with_name(f".{target.name}.partial")  # whole or not at all
        shutil.copy2(self.folder / repo / filename, partial)
        return partial.replace(target)


def fetch_hub_model(name: HubName, hub: HubFiles, folder: Path | None = None) -> Path:
    """Download `name`'s file(s) into `folder` (default: the models folder), unless there;
    the path llama.cpp opens (a split model's first part)."""
    folder = folder or models_dir()
    chosen = choose_files(hub.files(name.repo), name)
    paths = []
    for filename in chosen:
        target = folder / Path(filename).name
        if not target.is_file():
            downloaded = hub.download(name.repo, filename, folder)
            if downloaded != target:
                shutil.move(downloaded, target)
        paths.append(target)
    return paths[0]
