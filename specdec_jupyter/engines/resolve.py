"""One resolver: what a user types, to the model it means, the same in every entry point.

A reference is a `ResolvedModel` already resolved, a built-in model's name (the toy pair), a
path to a GGUF file or an MLX folder, a catalog name (fetched, and for MLX converted, on
first use), or any name `specdec-jupyter models list` prints: the listed name, the file
or folder name, or the file's stem. `engine` narrows the search to one kind; without it
the model's own format decides (GGUF: llama.cpp, MLX folder: mlx; catalog names:
llama.cpp). A name that fits several models is an error listing them.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelFileError, UnknownModelError
from ..models.catalog import CATALOG, GROUPS
from ..models.discovery import DiscoveredModel, discover
from ..models.metadata import fingerprint
from .registry import (
    DEFAULT_KIND,
    KIND_OF_FORMAT,
    KINDS,
    EngineKind,
    ResolvedModel,
    engine_kind,
    model_file_error,
)

# What names a model, as a user types it (a name, a path), or one resolved already.
ModelReference = str | os.PathLike[str] | ResolvedModel


def resolve(
    reference: ModelReference,
    engine: str | None = None,
    *,
    fetch: bool = True,
) -> ResolvedModel:
    """The model `reference` names, on `engine` (None: the model's own). With `fetch`
    False a catalog model must already be on disk (a selector never downloads); a fetch or
    conversion reports how far it is to the caller's progress listener (progress.py)."""
    kind = engine_kind(engine) if engine is not None else None
    if isinstance(reference, ResolvedModel):
        if kind is not None and reference.kind != kind.name:
            raise UnknownModelError(
                f"{reference.name} runs on {reference.kind}, not on {kind.name}"
            )
        return reference
    name = str(reference)
    for candidate in [kind] if kind is not None else KINDS.values():
        builtin = candidate.builtin(name)
        if builtin is not None:
            return builtin
    path = Path(name).expanduser()
    if path.exists():
        return _on_disk(path, kind)
    if name in CATALOG:
        kind = kind or KINDS[DEFAULT_KIND]
        return _on_disk(kind.catalog_model(name, fetch_now=fetch), kind)
    if name in GROUPS:
        raise UnknownModelError(
            f"{name!r} names a group of models ({', '.join(GROUPS[name])}); pick one of them"
        )
    return _listed(name, kind)


def _on_disk(path: Path, kind: EngineKind | None) -> ResolvedModel:
    """A file or folder that exists, checked against the kind asked for."""
    own_kind = KIND_OF_FORMAT["mlx" if path.is_dir() else "gguf"]
    model = ResolvedModel(own_kind, os.path.abspath(path), fingerprint(path)[0])
    if kind is not None and kind.name != own_kind:
        raise model_file_error(model, kind)
    return model


def _listed(name: str, kind: EngineKind | None) -> ResolvedModel:
    """A model found in the usual folders under one of the names a listing shows."""
    found = [
        m
        for m in discover()
        if name in _names_of(m) and (kind is None or m.info.format in kind.formats)
    ]
    if len(found) == 1:
        return _on_disk(found[0].path, kind)
    if found:
        raise UnknownModelError(
            f"{name!r} matches {len(found)} models: "
            + "; ".join(f"{m.name} ({m.path})" for m in found)
            + ". Give the listed name or the path of the one you mean"
        )
    if Path(name).suffix == ".gguf" or os.sep in name:
        raise ModelFileError(
            f"model file not found: {name}; check the path, or fetch a catalog model with "
            "`specdec-jupyter models fetch NAME`"
        )
    where = f" for the {kind.name} engine" if kind is not None else ""
    raise UnknownModelError(
        f"{name!r} is not a file, a catalog model ({', '.join(CATALOG)}) or a model found "
        f"in the usual folders{where}; `specdec-jupyter models list` shows what is found"
    )


def _names_of(model: DiscoveredModel) -> set[str]:
    """Every name a listing shows for a model: listed name, file or folder name, stem."""
    return {model.name, model.path.name, model.path.stem}
