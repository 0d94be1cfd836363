"""Speculative decoding in Jupyter, with every token's provenance in view.

import specdec_jupyter as sd
session = sd.load("qwen2.5-coder-1.5b", draft="qwen2.5-coder-0.5b")
session.generate("Write a quicksort algorithm in Python. Write code only.")
"""

from .decoding.events import GenerationStats, TokenEvent
from .errors import SpecDecError
from .result import GenerationResult
from .session import Session, load

__all__ = ["GenerationResult", "GenerationStats", "Session", "SpecDecError", "TokenEvent", "load"]
__version__ = "0.1.0"
