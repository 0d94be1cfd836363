"""What Python sends the widgets' front end, written where vitest reads it
(js/tests/fixtures/from_python.json): the settings forms and their defaults, as the widgets
make them. A pytest test keeps the file equal to what Python writes now, so a change on this
side reaches the JS tests; regenerate it with `python -m tests.support.js_fixture`."""

from __future__ import annotations

import json
from typing import Any

from specdec_jupyter.widgets.chat import widget as chat
from specdec_jupyter.widgets.teach import widget as teach
from tests.support import ROOT

FIXTURE = ROOT / "js" / "tests" / "fixtures" / "from_python.json"


def from_python() -> dict[str, Any]:
    return {
        "chat": {"setting_fields": chat.SETTING_FIELDS, "settings": chat.DEFAULT_SETTINGS},
        "teach": {"setting_fields": teach.SETTING_FIELDS, "settings": teach.DEFAULTS},
    }


def written() -> str:
    return json.dumps(from_python(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    FIXTURE.write_text(written(), encoding="utf-8")
