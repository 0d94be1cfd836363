"""The draft each main model uses by default, remembered across restarts.

Kept as LM Studio keeps it: per main model, in a small JSON file in the user's
config folder (`default-drafts.json` in `$SPECDEC_CONFIG_DIR`, else
`$XDG_CONFIG_HOME/specdec_jupyter`). The file is read on every lookup and written
whole and atomically, so another process (a second kernel, the CLI) sees a change
at once and never reads half a file.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..json_file import read_json_object, write_json_atomically
from ..paths import config_dir

FILE_NAME = "default-drafts.json"


class DefaultDrafts:
    """main model key -> draft key (as `ResolvedModel.key`: an absolute path, or a built-in
    model's name)."""

    def __init__(self, path: Path | None = None):
        self.path = path or config_dir() / FILE_NAME
        self._lock = threading.Lock()

    def get(self, main: str) -> str | None:
        return self._read().get(main)

    def set(self, main: str, draft: str | None) -> None:
        """Remember `draft` for `main`; None forgets it (the main model then runs alone)."""
        with self._lock:
            drafts = self._read()
            if draft is None:
                drafts.pop(main, None)
            else:
                drafts[main] = draft
            self._write(drafts)

    def _read(self) -> dict[str, str]:
        drafts = read_json_object(self.path).get("drafts")
        return dict(drafts) if isinstance(drafts, dict) else {}

    def _write(self, drafts: dict[str, str]) -> None:
        write_json_atomically(self.path, {"drafts": drafts})
