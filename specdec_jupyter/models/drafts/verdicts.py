"""Draft verdicts for models on disk, remembered until either file changes.

A verdict holds each engine's rule applied to the pair (llama.cpp's needs two GGUF
files; MLX's compares vocabulary sizes whatever the format), and is decided by the
engine that runs the main model as it is on disk. Verdicts are kept in a JSON file
in the cache folder, keyed by both paths and checked against both fingerprints
(size and modification time): touching or replacing a file recomputes its verdicts,
so a listing never shows a stale answer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from ...errors import IncompatibleDraftError, ModelFileError
from ..gguf.llama_load import read_token_pieces
from ..gguf.metadata import read_gguf_vocabulary
from ..json_file import CacheNote as CacheNote  # where callers have caught it
from ..json_file import StateFile, integers, mapping, versioned
from ..metadata import fingerprint, read_model_info
from ..model_info import ModelInfo
from ..paths import cache_dir
from ..shared_tokens import shared_tokens
from .compat import (
    RULE_OF_FORMAT,
    Compatibility,
    across_vocabularies,
    llamacpp_compatibility,
    mlx_compatibility,
    size_warnings,
)

CACHE_VERSION = 3  # bump when a rule or a reason's wording changes


@dataclass(frozen=True)
class DraftVerdict:
    main: Path
    draft: Path
    engine: str  # the main model's engine, whose rule decides
    engines: dict[str, Compatibility]
    problem: str | None = None  # set when either model cannot be read at all

    @property
    def compatible(self) -> bool:
        return self.engines[self.engine].compatible

    @property
    def text_level(self) -> bool:
        """Usable, but with another vocabulary: the draft drafts text."""
        return self.engines[self.engine].text_level

    @property
    def answer(self) -> str:
        return self.engines[self.engine].answer

    @property
    def reasons(self) -> list[str]:
        return self.engines[self.engine].reasons

    @property
    def warnings(self) -> list[str]:
        return self.engines[self.engine].warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "main": str(self.main),
            "draft": str(self.draft),
            "engine": self.engine,
            "compatible": self.compatible,
            "answer": self.answer,
            "reasons": self.reasons,
            "warnings": self.warnings,
            "engines": {name: asdict(verdict) for name, verdict in self.engines.items()},
            "problem": self.problem,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DraftVerdict:
        return cls(
            main=Path(data["main"]),
            draft=Path(data["draft"]),
            engine=data["engine"],
            engines={name: Compatibility(**v) for name, v in data["engines"].items()},
            problem=data["problem"],
        )

    def require_compatible(self) -> None:
        """Raise the error a user should see when this draft cannot be used, else nothing."""
        if self.problem:
            raise ModelFileError(f"{self.problem}; check the file, or download it again")
        if not self.compatible:
            raise IncompatibleDraftError(
                f"{self.draft.name} cannot draft for {self.main.name}: "
                + "; ".join(self.reasons)
                + ". Pick another draft (`specdec-jupyter compat MAIN` lists the usable ones), "
                "or load without a draft.",
                self.reasons,
            )


def check_draft(main: Path, draft: Path, *, store: VerdictStore | None = None) -> DraftVerdict:
    """The verdict on `draft` drafting for `main`, from the cache when neither file changed."""
    return check_drafts(main, [draft], store=store)[0]


def check_drafts(
    main: Path, drafts: Sequence[Path], *, store: VerdictStore | None = None
) -> list[DraftVerdict]:
    """Verdicts on each of `drafts` for `main`, reading the main model at most once."""
    store = store or default_store()
    main = Path(os.path.abspath(main))
    read = _Reader()
    verdicts: list[DraftVerdict] = []
    with store.lock:
        entries = store.load()
        computed = False
        for draft in drafts:
            draft = Path(os.path.abspath(draft))
            key = f"{main}\n{draft}"
            prints = [list(fingerprint(main)), list(fingerprint(draft))]
            verdict = _cached_verdict(entries.get(key), prints)
            if verdict is None:
                verdict = judge_draft(main, draft, read)
                entries[key] = {"fingerprints": prints, "verdict": verdict.to_dict()}
                computed = True
            verdicts.append(verdict)
        if computed:
            store.save(entries)
    return verdicts


def _cached_verdict(entry: Any, prints: list[list[int]]) -> DraftVerdict | None:
    """The entry's verdict if both files are as they were, else None (also for an entry
    this version cannot read: it is only a cache)."""
    try:
        return DraftVerdict.from_dict(entry["verdict"]) if entry["fingerprints"] == prints else None
    except (KeyError, TypeError, ValueError):
        return None


def judge_draft(main: Path, draft: Path, read: _Reader) -> DraftVerdict:
    """Apply every engine's rule to the pair, reading what each rule needs."""
    main_info, draft_info = read.info(main), read.info(draft)
    unusable = [(role, i) for role, i in (("main", main_info), ("draft", draft_info)) if i.problem]
    if unusable:
        refused = Compatibility(
            False, [f"the {role} model is unusable: {info.problem}" for role, info in unusable]
        )
        _, first = unusable[0]
        return DraftVerdict(
            main,
            draft,
            RULE_OF_FORMAT[main_info.format],
            {"llama.cpp": refused, "mlx": refused},
            problem=f"{first.path}: {first.problem}",
        )
    warnings = size_warnings(main_info, draft_info)
    engines = {
        name: replace(verdict, warnings=[*verdict.warnings, *warnings])
        for name, verdict in (
            ("llama.cpp", _llamacpp_rule(main_info, draft_info, read)),
            ("mlx", _mlx_rule(main_info, draft_info)),
        )
    }
    return DraftVerdict(main, draft, RULE_OF_FORMAT[main_info.format], engines)


def _llamacpp_rule(main: ModelInfo, draft: ModelInfo, read: _Reader) -> Compatibility:
    folders = [
        f"the {role} is an MLX folder; llama.cpp runs GGUF files"
        for role, info in (("main model", main), ("draft", draft))
        if info.format != "gguf"
    ]
    if folders:
        return Compatibility(False, folders)
    vocabularies = read.vocabulary(main.path), read.vocabulary(draft.path)
    return across_vocabularies(
        llamacpp_compatibility(*vocabularies),
        lambda: shared_tokens(read.pieces(draft.path), read.pieces(main.path)),
    )


def _mlx_rule(main: ModelInfo, draft: ModelInfo) -> Compatibility:
    verdict = mlx_compatibility(main.vocab_size, draft.vocab_size)
    known = main.vocab_size is not None and draft.vocab_size is not None
    return across_vocabularies(verdict) if known else verdict


class _Reader:
    """Reads each model once per check, however many pairs it is part of."""

    def __init__(self) -> None:
        self.info = cache(read_model_info)
        self.vocabulary = cache(read_gguf_vocabulary)
        self.pieces = cache(read_token_pieces)  # by llama.cpp, as its engine reads them


def _entry(value: Any, key: str) -> dict[str, Any]:
    """One pair's entry: both files' fingerprints and a verdict every reader can use."""
    entry = mapping(value, f"verdict {key!r}")
    prints = entry.get("fingerprints")
    if not isinstance(prints, list) or len(prints) != 2:
        raise ValueError(f"verdict {key!r} has no two fingerprints")
    for print_ in prints:
        integers(print_, f"verdict {key!r}'s fingerprint", 2)
    verdict = DraftVerdict.from_dict(mapping(entry.get("verdict"), f"verdict {key!r}"))
    for engine in verdict.engines.values():
        notes = [*engine.reasons, *engine.warnings]
        if type(engine.compatible) is not bool or not all(isinstance(n, str) for n in notes):
            raise ValueError(f"verdict {key!r} is not a verdict")
    if verdict.engine not in verdict.engines:
        raise ValueError(f"verdict {key!r} has no {verdict.engine!r} rule")
    return entry


class VerdictStore:
    """Verdicts in one JSON file, written whole and atomically (json_file). It is a cache: a
    file written for other rules counts as empty."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.file = StateFile(
            path, versioned(CACHE_VERSION, "verdicts", _entry), "draft verdicts", cache=True
        )

    def load(self) -> dict[str, Any]:
        return self.file.read().get("verdicts", {})

    def save(self, entries: dict[str, Any]) -> None:
        """Write the verdicts; a cache that cannot be written is skipped with a note, as a
        cache safe to lose must never block a load."""
        self.file.update(lambda _: {"version": CACHE_VERSION, "verdicts": entries})


@cache
def _store_at(path: Path) -> VerdictStore:
    return VerdictStore(path)


def default_store() -> VerdictStore:
    """The store in the cache folder (one object per file, so its lock covers all threads)."""
    return _store_at(cache_dir() / "draft-verdicts.json")
