"""Where model files live: one folder, chosen by `SPECDEC_MODELS_DIR`."""

from __future__ import annotations

import os
from pathlib import Path


def models_dir() -> Path:
    """The folder fetched models go to: `$SPECDEC_MODELS_DIR`, else the user's cache folder."""
    configured = os.environ.get("SPECDEC_MODELS_DIR")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "specdec_jupyter" / "models"
