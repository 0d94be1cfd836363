"""What the notebook's selectors offer, per engine, and how a chosen pair is run.

A backend lists main models, splits the other models into compatible drafts (with
warnings) and incompatible ones (with each reason), remembers a default draft, loads a
pair ahead of time, starts a generation on a worker thread, or holds the pair for the
teaching widget to drive a round at a time. Models are named by a `key` the widget keeps
in its state (an absolute path for files on disk).

- `LlamaCppBackend`: GGUF models found on disk (discovery), judged and run by the
  kernel's shared `EngineManager`.
- `ToyBackend`: the numpy n-gram pair, instant, nothing to download.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from ..engines.toy import toy_pair
from ..errors import SpecDecError, UnknownModelError
from ..generation import Emit, Generation, ShouldStop
from ..manager import EngineManager
from ..models.catalog import CATALOG, DEFAULT_MAIN
from ..models.discovery import DiscoveredModel, discover, locate
from ..models.fetch import is_fetched, model_path
from ..session import Prompt, Session


@dataclass(frozen=True)
class Choice:
    """One entry of a selector; `notes` are a draft's warnings, or why it is incompatible."""

    key: str
    label: str
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "notes": list(self.notes)}


class Backend(Protocol):
    engine: str

    def models(self) -> list[Choice]: ...

    def default_main(self) -> str | None:
        """The model a chat opens with when none is named."""
        ...

    def drafts(self, main: str) -> tuple[list[Choice], list[Choice]]:
        """(compatible, incompatible) drafts for `main`, every other model in one of them."""
        ...

    def key_of(self, reference: str) -> str:
        """The key of a model named as a user would name it (catalog name, path, file name)."""
        ...

    def default_draft(self, main: str) -> str | None: ...

    def set_default_draft(self, main: str, draft: str | None) -> None: ...

    def prepare(self, main: str, draft: str | None) -> None:
        """Load the pair now (slow), so the first reply starts at once."""
        ...

    def start(self, prompt: Prompt, *, main: str, draft: str | None, **options) -> Generation: ...

    def hold(self, main: str, draft: str) -> AbstractContextManager[Session]:
        """The pair's session, held from other runs while the caller drives it (teaching)."""
        ...


@cache
def shared_manager() -> EngineManager:
    """One manager per kernel, shared by every widget and magic, so models load once."""
    return EngineManager()


class LlamaCppBackend:
    engine = "llama.cpp"

    def __init__(self, manager: EngineManager):
        self.manager = manager

    def _found(self) -> list[DiscoveredModel]:
        return [m for m in discover() if m.info.usable and m.info.engine == self.engine]

    def models(self) -> list[Choice]:
        return [Choice(_key(m.path), _label(m)) for m in self._found()]

    def default_main(self) -> str | None:
        """The catalog's default main model when it is here, else the first model found."""
        keys = [choice.key for choice in self.models()]
        catalog_main = CATALOG[DEFAULT_MAIN]
        if is_fetched(catalog_main) and _key(model_path(catalog_main)) in keys:
            return _key(model_path(catalog_main))
        return keys[0] if keys else None

    def drafts(self, main: str) -> tuple[list[Choice], list[Choice]]:
        compatible, incompatible = [], []
        for model in self._found():
            if _key(model.path) == main:
                continue
            verdict = self.manager.check_draft(main, model.path)
            rule = verdict.engines[self.engine]
            if rule.compatible:
                compatible.append(Choice(_key(model.path), _label(model), tuple(rule.warnings)))
            else:
                incompatible.append(Choice(_key(model.path), _label(model), tuple(rule.reasons)))
        return compatible, incompatible

    def key_of(self, reference: str) -> str:
        return _key(self.manager.path_of(reference))

    def default_draft(self, main: str) -> str | None:
        """The remembered draft, if it is on disk (never fetched just to fill a selector)."""
        draft = self.manager.default_draft(main)
        try:
            return None if draft is None else _key(locate(draft))
        except SpecDecError:
            return None

    def set_default_draft(self, main: str, draft: str | None) -> None:
        self.manager.set_default_draft(main, draft)

    def prepare(self, main: str, draft: str | None) -> None:
        if draft is not None:
            self.manager.check_draft(main, draft).require_compatible()
        for model in (main, draft):
            if model is not None:
                self.manager.engine(model)

    def start(self, prompt: Prompt, *, main: str, draft: str | None, **options) -> Generation:
        return self.manager.start(prompt, main=main, draft=draft, **options)

    def hold(self, main: str, draft: str) -> AbstractContextManager[Session]:
        return self.manager.hold(main, draft)


def _key(path: os.PathLike[str]) -> str:
    """Models on disk are keyed by absolute path, as the manager names them."""
    return os.path.abspath(path)


def _label(model: DiscoveredModel) -> str:
    facts = [f for f in (model.info.size_label, model.info.quantization) if f]
    return f"{model.name} ({', '.join(facts)})" if facts else model.name


class ToyBackend:
    """The toy pair: a trigram main model and a bigram draft over one word vocabulary."""

    engine = "toy"
    MAIN, DRAFT = "toy-trigram", "toy-bigram"

    def __init__(self) -> None:
        self._session = Session(*toy_pair())
        self._default: str | None = self.DRAFT

    def models(self) -> list[Choice]:
        return [Choice(self.MAIN, "toy-trigram (numpy trigram model)")]

    def default_main(self) -> str | None:
        return self.MAIN

    def drafts(self, main: str) -> tuple[list[Choice], list[Choice]]:
        return [Choice(self.DRAFT, "toy-bigram (numpy bigram model)")], []

    def key_of(self, reference: str) -> str:
        if reference not in (self.MAIN, self.DRAFT):
            raise UnknownModelError(
                f"the toy engine has two models, {self.MAIN} and {self.DRAFT}; not {reference!r}"
            )
        return reference

    def default_draft(self, main: str) -> str | None:
        return self._default

    def set_default_draft(self, main: str, draft: str | None) -> None:
        self._default = draft

    def prepare(self, main: str, draft: str | None) -> None:
        """Nothing to load: the toy models are trained at import time."""

    def start(self, prompt: Prompt, *, main: str, draft: str | None, **options) -> Generation:
        session = self._session

        def work(emit: Emit, should_stop: ShouldStop):
            stream = session.stream(
                prompt, should_stop=should_stop, use_draft=bool(draft), **options
            )
            for event in stream:
                emit(event)
            return session.last_stats

        return Generation(work, name="specdec toy")

    def hold(self, main: str, draft: str) -> AbstractContextManager[Session]:
        return nullcontext(self._session)


ENGINES: Sequence[str] = (LlamaCppBackend.engine, ToyBackend.engine)


def backend_for(engine: str, manager: EngineManager | None = None) -> Backend:
    if engine == LlamaCppBackend.engine:
        return LlamaCppBackend(manager or shared_manager())
    if engine == ToyBackend.engine:
        return ToyBackend()
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
