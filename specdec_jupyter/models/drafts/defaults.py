"""The draft each main model uses by default, remembered across restarts.

Kept as LM Studio keeps it: per main model, in a small JSON file in the user's
config folder (`default-drafts.json` in `$SPECDEC_CONFIG_DIR`, else
`$XDG_CONFIG_HOME/specdec_jupyter`). The file is read on every lookup and written
whole and atomically, so another process (a second kernel, the CLI) sees a change
at once and never reads half a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..json_file import StateFile, mapping, text
from ..paths import config_dir

FILE_NAME = "default-drafts.json"


def _shape(data: Any) -> dict[str, Any]:
    """{"drafts": {main key: draft key}}."""
    drafts = mapping(mapping(data, "the file").get("drafts", {}), '"drafts"')
    return {"drafts": {text(k, "a main model"): text(v, "a draft") for k, v in drafts.items()}}


class DefaultDrafts:
    """main model key -> draft key (as `ResolvedModel.key`: an absolute path, or a built-in
    model's name). A file that cannot be read is kept aside, never written over (json_file)."""

    def __init__(self, path: Path | None = None):
        self.path = path or config_dir() / FILE_NAME
        self.file = StateFile(self.path, _shape, "default drafts", cache=False)

    def get(self, main: str) -> str | None:
        return self.file.read().get("drafts", {}).get(main)

    def set(self, main: str, draft: str | None) -> None:
        """Remember `draft` for `main`; None forgets it (the main model then runs alone)."""

        def change(content: dict[str, Any]) -> dict[str, Any]:
            drafts = dict(content.get("drafts", {}))
            if draft is None:
                drafts.pop(main, None)
            else:
                drafts[main] = draft
            return {"drafts": drafts}

        self.file.update(change)
