"""The models a server offers, by id: a client names models only through this table.

Ids are the toy models' names, fetched catalog names and the names discovery lists
(our models folder, the folders given to `serve`, LM Studio's and the Hugging Face
cache's). A request can never name a path, so no client can make the server open a file
of its choosing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..engines.registry import KIND_OF_FORMAT, KINDS, ResolvedModel
from ..errors import UnknownModelError
from ..models.catalog import CATALOG
from ..models.discovery import discover
from ..models.fetch import is_fetched, model_path
from ..models.metadata import fingerprint, read_model_info
from ..models.model_info import ModelInfo


@dataclass(frozen=True)
class ServedModel:
    id: str
    model: ResolvedModel
    info: ModelInfo | None  # None for built-in models (the toy pair)

    def describe(self, loaded: bool) -> dict[str, Any]:
        """LM Studio's `/api/v0/models` entry."""
        info = self.info
        return {
            "id": self.id,
            "object": "model",
            "type": "llm",
            "publisher": _publisher(self.id),
            "arch": info.architecture if info else "n-gram",
            "compatibility_type": info.format if info else self.model.kind,
            "quantization": (info.quantization if info else None) or "none",
            "state": "loaded" if loaded else "not-loaded",
            "max_context_length": (info.context_length if info else None) or 1024,
        }


class ServedModels:
    """Every model the server offers, found once at start (`refresh()` looks again)."""

    def __init__(self, folders: Sequence[str | os.PathLike[str]] = (), *, toy_only: bool = False):
        self.folders = list(folders)
        self.toy_only = toy_only  # the toy pair alone: nothing read from disk
        self.refresh()

    def refresh(self) -> None:
        table: dict[str, ServedModel] = {}
        for listed in KINDS["toy"].models():
            table[listed.model.key] = ServedModel(listed.model.key, listed.model, None)
        if self.toy_only:
            self._table = table
            return
        for key, entry in CATALOG.items():
            if is_fetched(entry):
                path = model_path(entry)
                model = ResolvedModel("llama.cpp", os.path.abspath(path), fingerprint(path)[0])
                table[key] = ServedModel(key, model, read_model_info(path))
        known = {served.model.key for served in table.values()}
        for found in discover(self.folders):
            key = os.path.abspath(found.path)
            if found.info.usable and key not in known and found.name not in table:
                kind = KIND_OF_FORMAT[found.info.format]
                model = ResolvedModel(kind, key, found.info.size_bytes)
                table[found.name] = ServedModel(found.name, model, found.info)
        self._table = table

    def __iter__(self):
        return iter(self._table.values())

    def get(self, model_id: str) -> ServedModel:
        """The model called `model_id`; an unknown id names where to see the known ones."""
        served = self._table.get(model_id)
        if served is None:
            raise UnknownModelError(
                f"model {model_id!r} is not served here; GET /v1/models lists the ids"
            )
        return served

    def id_of_key(self, key: str) -> str | None:
        """The id of the model whose `ResolvedModel.key` is `key` (a path, or a toy name)."""
        return next((s.id for s in self._table.values() if s.model.key == key), None)


def _publisher(model_id: str) -> str:
    return model_id.split("/")[0] if "/" in model_id else "local"
