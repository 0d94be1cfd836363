"""What the notebook's selectors and runs ask of where models run: the `Service` protocol,
and `EngineService`, one engine kind on the kernel's manager (remote_service.py is a server).

The chat and teaching widgets and the magics ask a service what to offer (main models,
compatible drafts with warnings, incompatible ones with each reason, the default draft)
and hand it the pair the user chose to load, run or hold. Models are named by a `key` the
widgets keep in their state (`ResolvedModel.key`: an absolute path, or a built-in model's name);
everything else is the registry's and the EngineManager's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from ..engines.registry import ListedModel, engine_choices, engine_kind
from ..engines.resolve import ModelReference, resolve
from ..errors import SpecDecError
from ..models.drafts.guidance import guidance_for
from ..models.names import short_name
from ..progress import ProgressListener, reporting_to
from ..settings import LoadOptions, RunSettings
from .generation import Emit, Generation, OnEnd, Runnable
from .manager import EngineManager
from .pair import Pair
from .session import Prompt, Session


@dataclass(frozen=True)
class Choice:
    """One entry of a selector: a short `label`, the model's `details` for its tooltip;
    `notes` are a draft's warnings, or why it is incompatible; `group` is a draft's answer
    ("same vocabulary", "another vocabulary", "unusable"), under which a selector lists it."""

    key: str
    label: str
    notes: tuple[str, ...] = ()
    details: str = ""
    group: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "notes": list(self.notes),
            "title": self.details,
            "group": self.group,
        }


class Service(ABC):
    """Where the chat's models are listed, loaded and run: this kernel's (`EngineService`) or
    a server's (`RemoteService`). Models are named by their `key`."""

    engine: str  # the engine kind's name, "server" for a server
    options: LoadOptions  # how a pair loads unless told otherwise

    @abstractmethod
    def engines(self) -> list[dict[str, object]]:
        """What the engine selector offers: name, available, note."""

    @abstractmethod
    def with_engine(self, engine: str) -> Service:
        """The service of another engine kind (a server runs its own)."""

    @abstractmethod
    def require_available(self) -> None:
        """Refuse, in words, an engine that cannot run here."""

    @abstractmethod
    def models(self) -> list[Choice]:
        """Every main model on offer."""

    @abstractmethod
    def default_main(self) -> str | None:
        """The main model a chat opens with (None: there is none)."""

    @abstractmethod
    def key_of(self, reference: str) -> str:
        """The key of a model named as a user names it."""

    @abstractmethod
    def drafts(self, main: str) -> tuple[list[Choice], list[Choice]]:
        """(compatible, incompatible) drafts for `main`, each with its notes."""

    @abstractmethod
    def default_draft(self, main: str) -> str | None:
        """The draft `main` opens with (None: none)."""

    @abstractmethod
    def draft_guidance(self, main: str, others: int) -> str:
        """What to do when no draft fits `main` (`others` models were judged), in words."""

    @abstractmethod
    def set_default_draft(self, main: str, draft: str | None) -> None:
        """Remember `draft` as `main`'s default."""

    @abstractmethod
    def prepare(self, pair: Pair, on_progress: ProgressListener | None = None) -> None:
        """Load the pair now, so the first reply starts at once."""

    @abstractmethod
    def work(self, prompt: Prompt, pair: Pair, settings: RunSettings, continue_: bool) -> Runnable:
        """What a run on the pair does, for a `Generation` to run; what cannot run (a busy
        model) is refused here."""

    def start(
        self,
        prompt: Prompt,
        pair: Pair,
        settings: RunSettings,
        *,
        continue_: bool = False,
        on_event: Emit | None = None,
        on_end: OnEnd | None = None,
    ) -> Generation:
        """A run on the pair, on a worker thread; `on_event` and `on_end` listen on it."""
        return self.work(prompt, pair, settings, continue_).start(on_event, on_end)


@cache
def shared_manager() -> EngineManager:
    """One manager per kernel, shared by every widget and magic, so models load once."""
    return EngineManager()


class EngineService(Service):
    """The selectors' and runs' view of one engine kind (`engine`: a registry name)."""

    def __init__(self, engine: str, manager: EngineManager | None = None):
        self.kind = engine_kind(engine)
        self.engine = self.kind.name
        self.manager = manager or shared_manager()
        self.options = self.manager.options

    def engines(self) -> list[dict[str, object]]:
        return engine_choices()

    def with_engine(self, engine: str) -> EngineService:
        return EngineService(engine, self.manager)

    def require_available(self) -> None:
        self.kind.require_available()

    def models(self) -> list[Choice]:
        return [_choice(listed) for listed in self.kind.models()]

    def default_main(self) -> str | None:
        """The kind's default main model when it is here, else the first model found."""
        keys = [choice.key for choice in self.models()]
        default = self._on_disk(self.kind.default_pair[0])
        return default if default in keys else (keys[0] if keys else None)

    def drafts(self, main: str) -> tuple[list[Choice], list[Choice]]:
        """(compatible, incompatible) drafts for `main`, every other model in one of them:
        those of its vocabulary first, then those of another (which draft text, their note
        says so, their group is "another vocabulary"); the unusable ones with the reasons."""
        same, text, incompatible = [], [], []
        for listed in self.kind.models():
            if listed.model.key == main:
                continue
            verdict = self.manager.check_draft(main, listed.model, self.engine)
            if not verdict.compatible:
                incompatible.append(_choice(listed, verdict.reasons, verdict.answer))
            else:
                group = text if verdict.text_level else same
                group.append(_choice(listed, verdict.warnings, verdict.answer))
        return [*same, *text], incompatible

    def key_of(self, reference: ModelReference) -> str:
        """The key of a model named as a user would name it (catalog name, path, file name)."""
        return self.manager.model(reference, self.engine).key

    def draft_guidance(self, main: str, others: int) -> str:
        model = self.manager.model(main, self.engine)
        return guidance_for(short_name(model.path), model.path, others)

    def default_draft(self, main: str) -> str | None:
        """The draft a run on `main` uses when none is named (the manager's one rule)."""
        return self.manager.default_draft(main, self.engine)

    def set_default_draft(self, main: str, draft: str | None) -> None:
        self.manager.set_default_draft(main, draft, self.engine)

    def prepare(self, pair: Pair, on_progress: ProgressListener | None = None) -> None:
        """Load the pair now (slow), so the first reply starts at once; `on_progress` hears
        how far each fetch, conversion and load has got."""
        with reporting_to(on_progress):
            self.manager.prepare(self._here(pair))

    def work(self, prompt: Prompt, pair: Pair, settings: RunSettings, continue_: bool) -> Runnable:
        return self.manager.work(prompt, self._here(pair), settings, continue_=continue_)

    @contextmanager
    def hold(self, pair: Pair) -> Iterator[Session]:
        """The pair's session, held from other runs while the caller drives it (teaching)."""
        with self.manager.hold(self._here(pair)) as session:
            yield session

    def _here(self, pair: Pair) -> Pair:
        return replace(pair, engine=self.engine)

    def _on_disk(self, reference: str) -> str | None:
        try:
            return resolve(reference, self.engine, fetch=False).key
        except SpecDecError:
            return None


def _choice(listed: ListedModel, notes: Sequence[str] = (), group: str = "") -> Choice:
    return Choice(listed.model.key, listed.label, tuple(notes), listed.details, group)
