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


class UnusableModelError(ModelFileError):
    """A model file or folder cannot be read; `reason` says why, without the path."""

    def __init__(self, path: object, reason: str):
        super().__init__(f"{path}: {reason}")
        self.reason = reason


class ModelLoadError(SpecDecError):
    """The backend refused to load a model file that looked valid."""


class ClosedError(ModelLoadError):
    """A model was closed (by its session, or unloaded by the manager) and used again."""


class IncompatibleDraftError(SpecDecError):
    """The draft model cannot propose tokens the main model understands."""

    def __init__(self, message: str, reasons: list[str]):
        super().__init__(message)
        self.reasons = reasons


class SettingsError(SpecDecError, ValueError):
    """A setting is out of range (a ValueError too, as Python's own checks raise)."""


class ContextOverflowError(SpecDecError):
    """The prompt does not fit in the model's context window."""


class FetchError(SpecDecError):
    """A model could not be fetched, assembled or verified."""


class UnknownModelError(SpecDecError):
    """A name is neither a file on disk nor a model the catalog knows."""


class EngineBusyError(SpecDecError):
    """A model is generating for another request, and the caller chose not to wait."""


class RpcWorkerError(SpecDecError):
    """An RPC worker is not there, is busy with another client, or is of another build."""


class EngineLostError(SpecDecError):
    """A model's engine is gone (the process it ran in ended: an RPC worker stopped
    answering); the text generated so far stands (`events`, `text`: what a `generate` had
    made), and loading the model again starts anew."""

    def __init__(self, message: str):
        super().__init__(message)
        self.events: list = []  # TokenEvents, set by whoever collected them

    @property
    def text(self) -> str:
        return "".join(event.text for event in self.events)


class MemoryBudgetError(SpecDecError):
    """Loading a model would exceed the engine manager's memory budget."""


def one_line(error: BaseException) -> str:
    """An error as one line for a user: the package's message as it is; an OS error about a
    user's file as its reason and the file (not a traceback from deep inside)."""
    if isinstance(error, OSError) and not isinstance(error, SpecDecError):
        reason = error.strerror or type(error).__name__
        names = [str(name) for name in (error.filename, error.filename2) if name is not None]
        return f"{' -> '.join(names)}: {reason}" if names else str(error)
    return str(error)
