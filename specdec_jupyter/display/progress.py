"""Progress shown where nobody else shows it: one updating line on a terminal, a bar in a
notebook cell (the chat widget draws its own, from the same events: widgets/chat/).

`showing(progress)` is what `fetch`, `convert_gguf_to_mlx` and `load` wrap their work in:
with `progress=True` and no listener set by the caller, the events go to the display that
suits where the code runs; a caller that listens itself (a widget, the magics) keeps them.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from ..progress import Progress, ProgressListener, current_listener, reporting_to

BAR_WIDTH = 24


class TerminalLine:
    """One line rewritten in place on a terminal and erased when a step ends, so the output
    that follows starts clean; silent when `stream` is not a terminal (a pipe, a log file)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()

    def __call__(self, event: Progress) -> None:
        if not self.enabled:
            return
        if event.finished:
            self.stream.write("\r\x1b[K")
        else:
            filled = int(event.fraction * BAR_WIDTH)
            line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {event.describe()}"
            width = shutil.get_terminal_size().columns - 1
            self.stream.write(f"\r{line[:width]}\x1b[K")
        self.stream.flush()


class NotebookBar:
    """An ipywidgets bar with what is under way, displayed in the cell at the first event and
    reused by every step after it (fetch, then load main, then load draft)."""

    def __init__(self) -> None:
        self.bar: Any = None  # ipywidgets' FloatProgress and Label, made at the first event
        self.label: Any = None

    def __call__(self, event: Progress) -> None:
        if self.bar is None:
            import ipywidgets
            from IPython.display import display

            self.bar = ipywidgets.FloatProgress(min=0.0, max=1.0)
            self.label = ipywidgets.Label()
            display(ipywidgets.HBox([self.bar, self.label]))
        self.bar.value = event.fraction
        self.bar.bar_style = "success" if event.finished else ""
        self.label.value = event.describe()


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where a widget can be displayed)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and hasattr(shell, "kernel")


def default_display() -> ProgressListener:
    return NotebookBar() if in_notebook() else TerminalLine()


@contextmanager
def showing(progress: bool) -> Iterator[None]:
    """Show this block's progress (when `progress`) unless the caller listens already."""
    listener = default_display() if progress and current_listener() is None else None
    with reporting_to(listener):
        yield
