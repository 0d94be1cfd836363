"""Running `%specdec` in IPython's test shell and capturing what it shows."""

from __future__ import annotations

from typing import Any

from IPython.utils.capture import CapturedIO, capture_output


def magic(ip: Any, line: str, cell: str | None = None) -> tuple[Any, CapturedIO]:
    """Run `%specdec line` (or `%%specdec line` over `cell`): its result and its output."""
    with capture_output() as captured:
        if cell is None:
            result = ip.run_line_magic("specdec", line)
        else:
            result = ip.run_cell_magic("specdec", line, cell)
    return result, captured
