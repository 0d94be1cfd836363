"""Where things live: model files, the user's settings, and what we cache.

Each folder follows the XDG convention and moves with one environment variable
(tests point them at temporary folders).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def _xdg_folder(xdg_variable: str, fallback: str) -> Path:
    return Path(os.environ.get(xdg_variable) or Path.home() / fallback) / "specdec_jupyter"


def _folder(override: str, xdg_variable: str, fallback: str) -> Path:
    configured = os.environ.get(override)
    return Path(configured).expanduser() if configured else _xdg_folder(xdg_variable, fallback)


def models_dir() -> Path:
    """The folder fetched models go to: `$SPECDEC_MODELS_DIR`, else the user's cache folder."""
    configured = os.environ.get("SPECDEC_MODELS_DIR")
    if configured:
        return Path(configured).expanduser()
    return _xdg_folder("XDG_CACHE_HOME", ".cache") / "models"


def config_dir() -> Path:
    """Settings that must survive a restart (default drafts): `$SPECDEC_CONFIG_DIR`, else
    `$XDG_CONFIG_HOME/specdec_jupyter`, else `~/.config/specdec_jupyter`."""
    return _folder("SPECDEC_CONFIG_DIR", "XDG_CONFIG_HOME", ".config")


def cache_dir() -> Path:
    """Results worth keeping but safe to lose (compatibility verdicts): `$SPECDEC_CACHE_DIR`,
    else `$XDG_CACHE_HOME/specdec_jupyter`, else `~/.cache/specdec_jupyter`."""
    return _folder("SPECDEC_CACHE_DIR", "XDG_CACHE_HOME", ".cache")


def not_a_file(path: Path) -> str | None:
    """Why `path` is not a regular file a model can be read from, or None. A FIFO or a device
    named like a model would block or never end a read, so it is refused before any open."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    return "is not a regular file (a FIFO, a socket or a device); a model is a file"
