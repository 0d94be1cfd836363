"""What the server's tests share."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def private_folders(tmp_path_factory):
    """A config and a cache folder of the module's own: no default draft or verdict from
    elsewhere."""
    with pytest.MonkeyPatch.context() as patch:
        base = tmp_path_factory.mktemp("server")
        patch.setenv("SPECDEC_CONFIG_DIR", str(base / "config"))
        patch.setenv("SPECDEC_CACHE_DIR", str(base / "cache"))
        yield base
