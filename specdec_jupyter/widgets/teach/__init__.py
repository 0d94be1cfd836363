"""The teaching widget (widget.py), the trace of one round (trace.py) and the walkthrough
of a generation round by round (walkthrough.py)."""

from .widget import TeachWidget

__all__ = ["TeachWidget"]
