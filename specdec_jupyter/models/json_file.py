"""Small JSON files that several processes share (default drafts, call costs, draft verdicts):
the one reader and the one writer of each, `StateFile`.

A file is read whole and checked against its shape (a function that returns the content as
its users need it, or raises ValueError); it is written whole and atomically, so a reader sees
the old file or the new one, never half of either. A file that cannot be read is never
overwritten: one that is not JSON or has the wrong shape is kept aside as
`NAME.unreadable-N` with a note saying so, and the file starts afresh; one the OS will not
read (permissions) is left alone and not written over. A write that fails removes its
temporary file. A cache (`cache=True`) that cannot be written is a note (`CacheNote`), never
an error, since everything kept there can be measured again.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import SpecDecError, one_line

Shape = Callable[[Any], dict[str, Any]]
MAX_ASIDE = 100  # unreadable copies kept of one file


class CacheNote(UserWarning):
    """The cache could not be written: work goes on, only slower next time."""


class StateNote(UserWarning):
    """A state file could not be read and was kept aside (or left alone)."""


class StateFileError(SpecDecError):
    """A state file that is not a cache could not be written."""


class StateFile:
    """One JSON file of `shape`, called `what` in notes (e.g. "default drafts")."""

    def __init__(self, path: Path, shape: Shape, what: str, *, cache: bool):
        self.path, self.shape, self.what, self.cache = path, shape, what, cache
        self.lock = threading.Lock()  # for read-change-write within this process

    def read(self) -> dict[str, Any]:
        """The file's content in its shape; {} when it is missing or could not be read."""
        return self._read()[0]

    def update(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Read, change and write the file, under this object's lock. A file the OS would not
        let us read is not written over."""
        with self.lock:
            content, readable = self._read()
            if not readable:
                self._cannot_write(f"{self.path} could not be read, so it is left as it is")
                return
            try:
                write_json_atomically(self.path, change(content))
            except OSError as exc:
                self._cannot_write(one_line(exc))

    def _read(self) -> tuple[dict[str, Any], bool]:
        try:
            text = self.path.read_bytes().decode("utf-8")
        except (FileNotFoundError, NotADirectoryError):  # absent (its folder too)
            return {}, True
        except OSError as exc:
            warnings.warn(StateNote(f"{self.what}: {one_line(exc)}"), stacklevel=4)
            return {}, False
        except UnicodeDecodeError:
            return self._kept_aside("it is not UTF-8 text")
        try:
            return self.shape(json.loads(text)), True
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            return self._kept_aside(f"{type(exc).__name__}: {str(exc)[:120]}")

    def _kept_aside(self, why: str) -> tuple[dict[str, Any], bool]:
        """Move the unreadable file out of the way, so nothing writes over it, and say so."""
        for n in range(1, MAX_ASIDE + 1):
            aside = self.path.with_name(f"{self.path.name}.unreadable-{n}")
            if not aside.exists():
                break
        else:
            warnings.warn(
                StateNote(f"{self.what}: {self.path} is unreadable ({why})"), stacklevel=5
            )
            return {}, False
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:  # another process moved it first
            return self._read()
        except OSError as exc:
            warnings.warn(StateNote(f"{self.what}: {one_line(exc)}"), stacklevel=5)
            return {}, False
        warnings.warn(
            StateNote(
                f"{self.what}: {self.path} could not be read ({why}); it was kept as "
                f"{aside.name} and a new one is started"
            ),
            stacklevel=5,
        )
        return {}, True

    def _cannot_write(self, why: str) -> None:
        if not self.cache:
            raise StateFileError(f"{self.what} could not be saved: {why}")
        warnings.warn(
            CacheNote(
                f"{self.what} are not cached ({why}); set SPECDEC_CACHE_DIR to a writable "
                "folder to keep them"
            ),
            stacklevel=4,
        )


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write `data` as `path` whole: to a temporary file beside it, then renamed over it; the
    temporary file is removed if anything fails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, ensure_ascii=False)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


# -- shapes: each returns the content as its users read it, or raises ValueError ------------


def mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return value


def text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not text")
    return value


def seconds(value: Any, what: str) -> float:
    """A positive, finite number of seconds."""
    if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} is not a positive number of seconds")
    return float(value)


def integers(value: Any, what: str, length: int) -> list[int]:
    if (
        not isinstance(value, list)
        or len(value) != length
        or any(type(v) is not int for v in value)
    ):
        raise ValueError(f"{what} is not {length} integers")
    return value


def versioned(version: int, key: str, entry: Callable[[Any, str], Any]) -> Shape:
    """{"version": version, key: {name: entry}}: a cache of one version; a file of another
    version counts as empty (written for other rules), and each entry is checked."""

    def shape(data: Any) -> dict[str, Any]:
        data = mapping(data, "the file")
        if data.get("version") != version:
            return {}
        entries = mapping(data.get(key, {}), f'"{key}"')
        return {
            "version": version,
            key: {text(k, "a key"): entry(v, k) for k, v in entries.items()},
        }

    return shape
