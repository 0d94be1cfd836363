"""A real server for a module of tests, with its own config and cache folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from specdec_jupyter.server.app import SpecDecServer
from specdec_jupyter.server.serve import serving_in_background


@contextmanager
def private_server(base: Path, make: Callable[[], SpecDecServer]) -> Iterator[str]:
    """The server `make()` builds (with config and cache folders under `base`), running on a
    free loopback port; yields its URL."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPECDEC_CONFIG_DIR", str(base / "config"))
        patch.setenv("SPECDEC_CACHE_DIR", str(base / "cache"))
        with serving_in_background(make()) as url:
            yield url
