"""The chat widget (widget.py) and what it is made of."""

from .widget import ChatWidget

__all__ = ["ChatWidget"]
