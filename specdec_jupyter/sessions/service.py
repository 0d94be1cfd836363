"""One engine kind as the notebook's selectors and runs see it, on the kernel's manager.

The chat and teaching widgets and the magics ask an `EngineService` what to offer (main
models, compatible drafts with warnings, incompatible ones with each reason, the default
draft) and hand it the pair the user chose to load, run or hold. Models are named by a
`key` the widgets keep in their state (`ModelRef.key`: an absolute path, or a built-in
model's name); everything else is the registry's and the EngineManager's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from ..engines.registry import ListedModel, LoadOptions, engine_kind
from ..engines.resolve import ModelReference, resolve
from ..errors import SpecDecError
from ..progress import ProgressListener, reporting_to
from .generation import Generation
from .manager import EngineManager
from .session import Prompt, Session


@dataclass(frozen=True)
class Choice:
    """One entry of a selector: a short `label`, the model's `details` for its tooltip;
    `notes` are a draft's warnings, or why it is incompatible."""

    key: str
    label: str
    notes: tuple[str, ...] = ()
    details: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "notes": list(self.notes),
            "title": self.details,
        }


@cache
def shared_manager() -> EngineManager:
    """One manager per kernel, shared by every widget and magic, so models load once."""
    return EngineManager()


class EngineService:
    """The selectors' and runs' view of one engine kind (`engine`: a registry name)."""

    def __init__(self, engine: str, manager: EngineManager | None = None):
        self.kind = engine_kind(engine)
        self.engine = self.kind.name
        self.manager = manager or shared_manager()

    def models(self) -> list[Choice]:
        return [_choice(listed) for listed in self.kind.models()]

    def default_main(self) -> str | None:
        """The kind's default main model when it is here, else the first model found."""
        keys = [choice.key for choice in self.models()]
        default = self._on_disk(self.kind.default_pair[0])
        return default if default in keys else (keys[0] if keys else None)

    def drafts(self, main: str) -> tuple[list[Choice], list[Choice]]:
        """(compatible, incompatible) drafts for `main`, every other model in one of them."""
        compatible, incompatible = [], []
        for listed in self.kind.models():
            if listed.model.key == main:
                continue
            verdict = self.manager.check_draft(main, listed.model, self.engine)
            if verdict.compatible:
                compatible.append(_choice(listed, verdict.warnings))
            else:
                incompatible.append(_choice(listed, verdict.reasons))
        return compatible, incompatible

    def key_of(self, reference: ModelReference) -> str:
        """The key of a model named as a user would name it (catalog name, path, file name)."""
        return self.manager.model(reference, self.engine).key

    def default_draft(self, main: str) -> str | None:
        """The draft remembered for `main`, else the kind's default pair's draft when `main`
        is its main model; only drafts on disk (a selector never fetches)."""
        remembered = self.manager.default_draft(main, self.engine)
        if remembered is not None:
            return self._on_disk(remembered)
        default_main, default_draft = self.kind.default_pair
        return self._on_disk(default_draft) if self._on_disk(default_main) == main else None

    def set_default_draft(self, main: str, draft: str | None) -> None:
        self.manager.set_default_draft(main, draft, self.engine)

    def load_options(
        self, gpu_layers: int | None, draft_gpu_layers: int | None
    ) -> dict[str, LoadOptions]:
        """The manager's load options with these GPU layers (a run's `options=` and
        `draft_options=`)."""
        return {
            "options": replace(self.manager.options, gpu_layers=gpu_layers),
            "draft_options": replace(self.manager.draft_options, gpu_layers=draft_gpu_layers),
        }

    def prepare(
        self,
        main: str,
        draft: str | None,
        *,
        on_progress: ProgressListener | None = None,
        **load: LoadOptions | None,
    ) -> None:
        """Load the pair now (slow), so the first reply starts at once; `on_progress` hears
        how far each fetch, conversion and load has got."""
        with reporting_to(on_progress):
            self.manager.prepare(main, draft, self.engine, **load)

    def start(self, prompt: Prompt, *, main: str, draft: str | None, **options) -> Generation:
        """A run on the pair; `options` are `EngineManager.start`'s."""
        return self.manager.start(prompt, main=main, draft=draft, engine=self.engine, **options)

    @contextmanager
    def hold(self, main: str, draft: str) -> Iterator[Session]:
        """The pair's session, held from other runs while the caller drives it (teaching)."""
        with self.manager.hold(main, draft, self.engine) as session:
            yield session

    def _on_disk(self, reference: str) -> str | None:
        try:
            return resolve(reference, self.engine, fetch=False).key
        except SpecDecError:
            return None


def _choice(listed: ListedModel, notes: Sequence[str] = ()) -> Choice:
    return Choice(listed.model.key, listed.label, tuple(notes), listed.details)
