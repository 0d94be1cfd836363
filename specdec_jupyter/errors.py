"""Errors a user can act on: each message names the problem and the fix.

Everything the package raises on bad input derives from `SpecDecError`, so a
notebook, the CLI or a widget can show the message alone instead of a traceback
from inside a backend.
"""

from __future__ import annotations


class SpecDecError(Exception):
    """Base class for errors whose message is meant for the user as it is."""


class ModelFileError(SpecDecError):
    """A model file is missing, is not a GGUF file, or is damaged."""


class ModelLoadError(SpecDecError):
    """The backend refused to load a model file that looked valid."""


class IncompatibleDraftError(SpecDecError):
    """The draft model cannot propose tokens the main model understands."""

    def __init__(self, message: str, reasons: list[str]):
        super().__init__(message)
        self.reasons = reasons


class ContextOverflowError(SpecDecError):
    """The prompt does not fit in the model's context window."""


class FetchError(SpecDecError):
    """A model could not be fetched, assembled or verified."""


class UnknownModelError(SpecDecError):
    """A name is neither a file on disk nor a model the catalog knows."""
