"""Speculative decoding in Jupyter, with every token's provenance in view.

import specdec_jupyter as sd
session = sd.load("qwen2.5-coder-1.5b", draft="qwen2.5-coder-0.5b")
session.generate("Write a quicksort algorithm in Python. Write code only.")
remote = sd.connect("http://host:1234")  # the same API on `specdec-jupyter serve`

In a notebook, `%load_ext specdec_jupyter` adds `%specdec` / `%%specdec` and the chat widget.
"""

from .decoding.events import GenerationStats, TokenEvent
from .errors import SpecDecError
from .sessions.pair import DEFAULT, Pair
from .sessions.remote import RemoteSession, connect
from .sessions.result import GenerationResult
from .sessions.session import Session, load
from .settings import LoadOptions, RunSettings

__all__ = [
    "DEFAULT",
    "GenerationResult",
    "GenerationStats",
    "LoadOptions",
    "Pair",
    "RemoteSession",
    "RunSettings",
    "Session",
    "SpecDecError",
    "TokenEvent",
    "connect",
    "load",
]
__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """`%load_ext specdec_jupyter`: register `%specdec` and `%%specdec`."""
    from .magics import SpecDecMagics  # IPython and the widgets load only in a notebook

    ipython.register_magics(SpecDecMagics)
