"""Call costs remembered across runs, so `draft_tokens="auto"` starts warm.

What a main-model call on n tokens costs, and what a draft model takes per drafted
token, are facts of the machine and the model file, not of the prompt: a run measures
them (`DraftPolicy.measured`) and the next run starts from them instead of spending its
first rounds on plain steps and probes. They are kept per engine in one JSON file in the
cache folder, under a key made of the machine, the model's path and the engine's
backend (threads, GPU layers), and hold only while the file's size and modification
time are unchanged. How often drafts are accepted depends on the text, so that is kept
in the process only: a session's next run starts from its last run's acceptance.

A busy moment must not decide for good: each run adds one timing per call size (its
median) to the last `SAMPLES_KEPT`, a cost is their median, timings older than `MAX_AGE`
are forgotten, and the policy drops a remembered size off the curve through the others
and times a remembered draft cost again before believing it (policy.py, cost_curve.py).
`specdec-jupyter costs` shows what is remembered, `costs --reset` forgets it.

A cache that cannot be written is a note (`json_file.CacheNote`), never an error; an engine with
no model file (the toy engine) is remembered in the process only.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from ..engines.base import Engine
from ..models.json_file import StateFile, integers, mapping, seconds, versioned
from ..models.metadata import fingerprint
from ..models.paths import cache_dir
from .policy import AcceptanceByPosition, Measured

CACHE_VERSION = 2  # bump when what a cost means changes (2: several timings, each dated)
CACHE_FILE = "call-costs.json"
SAMPLES_KEPT = 5  # timings kept per call size and per draft model: a cost is their median
MAX_AGE = 7 * 24 * 3600.0  # seconds a timing counts for; then that cost is timed afresh
Entry = dict[str, Any]


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


def recent_median(samples: list[list[float]], now: float) -> float | None:
    """The median of the timings in `samples` ([seconds, when] pairs) no older than
    `MAX_AGE`; None when none is."""
    kept = [taken for taken, when in samples if now - when <= MAX_AGE]
    return statistics.median(kept) if kept else None


def with_sample(samples: list[list[float]], taken: float, now: float) -> list[list[float]]:
    """`samples` with one more timing, the oldest dropped past `SAMPLES_KEPT`."""
    return [*samples, [taken, now]][-SAMPLES_KEPT:]


def _samples(value: Any, what: str) -> list[list[float]]:
    """Dated timings: [seconds, when] pairs, each a positive and a finite number."""
    if not isinstance(value, list):
        raise ValueError(f"{what} is not a list of timings")
    for sample in value:
        if not isinstance(sample, list) or len(sample) != 2:
            raise ValueError(f"{what} holds {sample!r}, not a [seconds, when] pair")
        seconds(sample[0], what)
        if type(sample[1]) not in (int, float) or not math.isfinite(sample[1]):
            raise ValueError(f"{what} holds a timing dated {sample[1]!r}")
    return value


def _entry(value: Any, key: str) -> Entry:
    """One engine's costs, checked where they are read: its model's fingerprint, dated
    timings by call size, dated timings per drafted token."""
    entry = mapping(value, f"entry {key}")
    integers(entry.get("fingerprint"), f"entry {key}'s fingerprint", 2)
    calls = mapping(entry.get("calls", {}), f"entry {key}'s calls")
    for size, samples in calls.items():
        if not size.isdigit() or int(size) < 1:
            raise ValueError(f"entry {key} has a call of size {size!r}")
        _samples(samples, f"entry {key}'s calls of {size}")
    _samples(entry.get("draft_token", []), f"entry {key}'s draft_token")
    return entry


class CostStore:
    """The costs file: one entry per engine key, written whole and atomically (json_file)."""

    def __init__(self, path: Path):
        self.path = path
        self.file = StateFile(
            path, versioned(CACHE_VERSION, "engines", _entry), "call costs", cache=True
        )

    def entries(self) -> dict[str, Entry]:
        """Every entry of this version, by key ({} for a missing or unreadable file)."""
        return self.file.read().get("engines", {})

    def read(self, key: str, print_: list[int]) -> Entry:
        """The entry under `key`, or {} when there is none or the model file has changed."""
        entry = self.entries().get(key, {})
        return entry if entry.get("fingerprint") == print_ else {}

    def update(self, key: str, print_: list[int], change: Callable[[Entry], Entry]) -> None:
        """Replace the entry under `key` with `change(entry)` (the entry read under the
        file's lock); a cache that cannot be written is a note."""

        def changed(content: dict[str, Any]) -> dict[str, Any]:
            engines = content.get("engines", {})
            entry = engines.get(key, {})
            entry = change(entry if entry.get("fingerprint") == print_ else {})
            return {"version": CACHE_VERSION, "engines": {**engines, key: entry}}

        self.file.update(changed)

    def reset(self) -> bool:
        """Forget every remembered cost; whether there was a file to forget."""
        with self.file.lock:
            try:
                self.path.unlink()
            except FileNotFoundError:
                return False
            return True


@cache
def _store_at(path: Path) -> CostStore:
    return CostStore(path)


def default_store() -> CostStore:
    """The store in the cache folder (one object per file, so its lock covers all threads)."""
    return _store_at(cache_dir() / CACHE_FILE)


class CostMemory:
    """A session's memory of costs and acceptance: `start()` before a run, `remember()` after.

    The main engine's entry holds its timings by call size (`calls`); the draft engine's,
    its timings per drafted token (`draft_token`, under its name, the model drafter's
    source name). `now` tells the time the timings are dated by.
    """

    def __init__(
        self,
        main: Engine,
        draft: Engine | None,
        store: CostStore | None = None,
        now: Callable[[], float] = time.time,
    ):
        self.main = main
        self.draft = draft
        self.store = store or default_store()
        self.now = now
        self._in_process: dict[int, Entry] = {}  # as written, for a cache that cannot be
        self._acceptance: dict[str, AcceptanceByPosition] = {}

    def start(self) -> Measured:
        """What the remembered timings give (the median of each size's recent ones), and
        the acceptance this session's last run left."""
        now = self.now()
        measured = Measured(acceptance=copy.deepcopy(self._acceptance))
        for size, samples in self._read(self.main).get("calls", {}).items():
            seconds = recent_median(samples, now)
            if seconds is not None:
                measured.batch_seconds[int(size)] = seconds
        if self.draft is not None:
            seconds = recent_median(self._read(self.draft).get("draft_token", []), now)
            if seconds is not None:
                measured.draft_seconds[self.draft.name] = seconds
        return measured

    def remember(self, measured: Measured) -> None:
        """Add a run's timings to those remembered (one per size it timed), and keep its
        acceptance for the session's next run."""
        now = self.now()
        self._acceptance.update(copy.deepcopy(measured.acceptance))
        if measured.batch_seconds:

            def add_calls(entry: Entry) -> Entry:
                calls = dict(entry.get("calls", {}))
                for size, seconds in measured.batch_seconds.items():
                    calls[str(size)] = with_sample(calls.get(str(size), []), seconds, now)
                return {**entry, "calls": dict(sorted(calls.items(), key=lambda i: int(i[0])))}

            self._change(self.main, add_calls)
        if self.draft is not None and self.draft.name in measured.draft_seconds:
            seconds = measured.draft_seconds[self.draft.name]

            def add_draft(entry: Entry) -> Entry:
                return {
                    **entry,
                    "draft_token": with_sample(entry.get("draft_token", []), seconds, now),
                }

            self._change(self.draft, add_draft)

    def _read(self, engine: Engine) -> Entry:
        """The engine's entry in the file, else as this memory last wrote it (an engine with
        no model file, or a cache that could not be written)."""
        key = engine_key(engine)
        entry = self.store.read(*key) if key is not None else {}
        return entry or self._in_process.get(id(engine), {})

    def _change(self, engine: Engine, change: Callable[[Entry], Entry]) -> None:
        self._in_process[id(engine)] = change(self._read(engine))
        key = engine_key(engine)
        if key is None:
            return
        digest, print_ = key

        def described(entry: Entry) -> Entry:
            entry = change(entry)
            entry.update(model=str(engine.path), backend=engine.backend, fingerprint=print_)
            entry["machine"] = machine_identity()
            return entry

        self.store.update(digest, print_, described)
