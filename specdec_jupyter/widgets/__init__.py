"""Notebook widgets (anywidget): the chat, with its model and draft selectors, and the
step-by-step teacher.

Their front end is bundled from js/ into specdec_jupyter/static/ when the package is built.
Needs the `widgets` extra (anywidget, ipywidgets).
"""

from .chat import ChatWidget
from .teach import TeachWidget

__all__ = ["ChatWidget", "TeachWidget"]
