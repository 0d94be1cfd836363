"""What every widget here shares: the bundled front end's folder, a base class that refuses
keyword arguments it does not know (as lonboard's widgets do), the status they show, errors
in words, and the settings form drawn from the settings' declaration (settings.py)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

import anywidget

from ..errors import SpecDecError
from ..settings import Declared

STATIC = Path(__file__).parent.parent / "static"


def refuse_unknown(owner: str, given: Iterable[str], known: Collection[str]) -> None:
    """A TypeError naming the keyword arguments `owner` does not take, and those it does."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TypeError(
            f"{owner}() got unknown keyword arguments {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )


class Widget(anywidget.AnyWidget):
    """An anywidget whose keyword arguments must be its public traits: a misspelt one is a
    TypeError naming it, not a trait silently left at its default."""

    def __init__(self, **traits: Any):
        public = [name for name in self.trait_names() if not name.startswith("_")]
        refuse_unknown(type(self).__name__, [t for t in traits if not t.startswith("_")], public)
        super().__init__(**traits)


def status(state: str = "idle", message: str = "", progress: float | None = None) -> dict:
    """A widget's status line: idle, loading (with how far), generating, busy, done, error."""
    return {"state": state, "message": message, "progress": progress}


def describe(error: BaseException) -> str:
    """An error in words: ours are written for users; anything else is named by its type."""
    return str(error) if isinstance(error, SpecDecError) else f"{type(error).__name__}: {error}"


def on_messages(widget: anywidget.AnyWidget, handle: Callable[[dict], None]) -> None:
    """Hand the page's messages to `handle(content)`. A malformed one (not an object, a field
    missing or of the wrong type) becomes the widget's status in words, not a traceback in the
    kernel's log: the page is another program, and may be out of date or tampered with."""

    def received(_widget: Any, content: Any, _buffers: list) -> None:
        try:
            if not isinstance(content, dict):
                raise TypeError(f"{type(content).__name__}, not an object")
            handle(content)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            widget.status = status(
                "error", f"a message from the page was malformed ({describe(exc)}); reload it"
            )

    widget.on_msg(received)


def form_fields(*groups: type[Declared], only: Collection[str] | None = None) -> list[dict]:
    """The settings form's controls, in declaration order: every setting of `groups` (or of
    those named in `only`) that has a control (`Door.form`)."""
    return [
        {"key": f.name, **f.metadata["door"].form}
        for settings in groups
        for f in settings.declared()
        if f.metadata["door"].form is not None and (only is None or f.name in only)
    ]
