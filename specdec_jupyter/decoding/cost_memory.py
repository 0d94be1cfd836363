"""Call costs remembered across runs, so `draft_tokens="auto"` starts warm.

What a main-model call on n tokens costs, and what a draft model takes per drafted
token, are facts of the machine and the model file, not of the prompt: a run measures
them (`DraftPolicy.measured`) and the next run starts from them instead of spending its
first rounds on plain steps and probes. They are kept per engine in one JSON file in the
cache folder, under a key made of the machine, the model's path and the engine's
backend (threads, GPU layers), and hold only while the file's size and modification
time are unchanged. How often drafts are accepted depends on the text, so that is kept
in the process only: a session's next run starts from its last run's acceptance.

A cache that cannot be written is a note (`json_file.CacheNote`), never an error; an engine with
no model file (the toy engine) is remembered in the process only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
from functools import cache
from pathlib import Path
from typing import Any

from ..engines.base import Engine
from ..models.json_file import StateFile, integers, mapping, seconds, versioned
from ..models.metadata import fingerprint
from ..models.paths import cache_dir
from .policy import Measured

CACHE_VERSION = 1  # bump when what a cost means changes
CACHE_FILE = "call-costs.json"


def machine_identity() -> dict[str, Any]:
    """What makes call costs this machine's: its name, CPU and core count."""
    return {
        "node": platform.node(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
    }


@cache
def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def engine_key(engine: Engine) -> tuple[str, list[int]] | None:
    """The key an engine's costs are kept under, and its model file's fingerprint; None for
    an engine with no model file (its costs are kept in the process only)."""
    path = getattr(engine, "path", None)
    if path is None:
        return None
    path = Path(path).resolve()
    identity = {"machine": machine_identity(), "model": str(path), "backend": engine.backend}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]
    return digest, list(fingerprint(path))


def _entry(value: Any, key: str) -> dict[str, Any]:
    """One engine's costs, checked where they are read: its model's fingerprint, call costs
    by size, seconds per drafted token."""
    entry = mapping(value, f"entry {key}")
    integers(entry.get("fingerprint"), f"entry {key}'s fingerprint", 2)
    calls = mapping(entry.get("call_seconds", {}), f"entry {key}'s call_seconds")
    for size, cost in calls.items():
        if not size.isdigit() or int(size) < 1:
            raise ValueError(f"entry {key} has a call of size {size!r}")
        seconds(cost, f"entry {key}'s call of {size}")
    if "draft_token_seconds" in entry:
        seconds(entry["draft_token_seconds"], f"entry {key}'s draft_token_seconds")
    return entry


class CostStore:
    """The costs file: one entry per engine key, written whole and atomically (json_file)."""

    def __init__(self, path: Path):
        self.path = path
        self.file = StateFile(
            path, versioned(CACHE_VERSION, "engines", _entry), "call costs", cache=True
        )

    def read(self, key: str, print_: list[int]) -> dict[str, Any]:
        """The entry under `key`, or {} when there is none or the model file has changed."""
        entry = self.file.read().get("engines", {}).get(key, {})
        return entry if entry.get("fingerprint") == print_ else {}

    def write(self, key: str, entry: dict[str, Any]) -> None:
        """Replace the entry under `key`; a cache that cannot be written is a note."""

        def change(content: dict[str, Any]) -> dict[str, Any]:
            return {"version": CACHE_VERSION, "engines": {**content.get("engines", {}), key: entry}}

        self.file.update(change)


@cache
def _store_at(path: Path) -> CostStore:
    return CostStore(path)


def default_store() -> CostStore:
    """The store in the cache folder (one object per file, so its lock covers all threads)."""
    return _store_at(cache_dir() / CACHE_FILE)


class CostMemory:
    """A session's memory of costs and acceptance: `start()` before a run, `remember()` after.

    The main engine's entry holds its call costs by size; the draft engine's, its seconds
    per drafted token (under its name, the model drafter's source name).
    """

    def __init__(self, main: Engine, draft: Engine | None, store: CostStore | None = None):
        self.main = main
        self.draft = draft
        self.store = store or default_store()
        self._last: Measured | None = None

    def start(self) -> Measured:
        """The last run's measurements in this process, else what the cache holds."""
        if self._last is not None:
            return copy.deepcopy(self._last)
        measured = Measured()
        main = self._read(self.main)
        measured.batch_seconds = {int(n): s for n, s in main.get("call_seconds", {}).items()}
        if self.draft is not None and "draft_token_seconds" in self._read(self.draft):
            seconds = self._read(self.draft)["draft_token_seconds"]
            measured.draft_seconds = {self.draft.name: seconds}
        return measured

    def remember(self, measured: Measured) -> None:
        """Keep a run's measurements for the next run, and its costs in the cache: sizes
        this run did not call keep their older costs."""
        last = self._last or self.start()
        merged = Measured(
            {**last.batch_seconds, **measured.batch_seconds},
            {**last.draft_seconds, **measured.draft_seconds},
            {**last.acceptance, **measured.acceptance},
        )
        self._last = copy.deepcopy(merged)
        if measured.batch_seconds:
            calls = {str(n): s for n, s in sorted(merged.batch_seconds.items())}
            self._write(self.main, {"call_seconds": calls})
        if self.draft is not None and self.draft.name in measured.draft_seconds:
            seconds = merged.draft_seconds[self.draft.name]
            self._write(self.draft, {"draft_token_seconds": seconds})

    def _read(self, engine: Engine) -> dict[str, Any]:
        key = engine_key(engine)
        return self.store.read(*key) if key is not None else {}

    def _write(self, engine: Engine, costs: dict[str, Any]) -> None:
        key = engine_key(engine)
        if key is None:
            return
        digest, print_ = key
        entry = {**self.store.read(digest, print_), **costs}
        entry.update(model=str(engine.path), backend=engine.backend, fingerprint=print_)
        entry["machine"] = machine_identity()
        self.store.write(digest, entry)
