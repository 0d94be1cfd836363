"""Notebook widgets (anywidget): the chat, with its model and draft selectors.

Their front end is bundled from js/ into specdec_jupyter/static/ when the package is built.
Needs the `widgets` extra (anywidget, ipywidgets).
"""

from .chat import ChatWidget

__all__ = ["ChatWidget"]
