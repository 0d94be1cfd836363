"""A server's models as the chat widget's selectors and runs see them: the `Service`
protocol over `specdec-jupyter serve`, so `ChatWidget(server=URL)` works as it does here."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..errors import SpecDecError, UnknownModelError
from ..progress import ProgressListener
from ..settings import LoadOptions, RunSettings
from .generation import Runnable, streamed
from .pair import Pair
from .remote import RemoteSession
from .service import Choice, Service
from .session import Prompt


class RemoteService(Service):
    """Selectors and runs on the server at `url`; model keys are the server's ids."""

    engine = "server"
    options = LoadOptions()  # sent nowhere: the server loads with its own

    def __init__(self, url: str, api_key: str | None = None):
        self.url, self.api_key = url.rstrip("/"), api_key
        self._session = RemoteSession(self.url, "", api_key=api_key)
        self._listed = self._session.models()

    def engines(self) -> list[dict[str, object]]:
        return [{"name": self.engine, "available": True, "note": f"the models of {self.url}"}]

    def with_engine(self, engine: str) -> RemoteService:
        if engine != self.engine:
            raise SpecDecError(f"{self.url} runs its models on its own engines")
        return self

    def require_available(self) -> None:
        """The server answered when this service was made."""

    def models(self) -> list[Choice]:
        """The served models of one kind: the server's GGUF models when it has any, so the
        toy pair and models of engines the chat does not run stay off the selector (a model
        named still runs)."""
        kinds = [m.get("compatibility_type") for m in self._listed]
        kind = "gguf" if "gguf" in kinds else next(iter(kinds), None)
        return [
            Choice(m["id"], m["id"], details=_details(m))
            for m in self._listed
            if m.get("compatibility_type") == kind
        ]

    def default_main(self) -> str | None:
        choices = self.models()
        return choices[0].key if choices else None

    def key_of(self, reference: str) -> str:
        if reference not in {m["id"] for m in self._listed}:
            raise UnknownModelError(f"{self.url} serves no model {reference!r}")
        return reference

    def drafts(self, main: str) -> tuple[list[Choice], list[Choice]]:
        listed = self._drafts(main)
        about = {m["id"]: _details(m) for m in self._listed}

        def choices(entries: list[dict[str, Any]]) -> list[Choice]:
            return [
                Choice(
                    e["id"], e["id"], tuple(e["notes"]), about.get(e["id"], ""), e.get("group", "")
                )
                for e in entries
            ]

        return choices(listed["compatible"]), choices(listed["incompatible"])

    def default_draft(self, main: str) -> str | None:
        return self._drafts(main)["default"]

    def draft_guidance(self, main: str, others: int) -> str:
        return str(self._drafts(main).get("guidance") or "")

    def set_default_draft(self, main: str, draft: str | None) -> None:
        raise SpecDecError(
            "default drafts of a server are kept on its machine; set them there "
            "(EngineManager.set_default_draft), or name the draft in each request"
        )

    def prepare(self, pair: Pair, on_progress: ProgressListener | None = None) -> None:
        """The server loads a model when the first request needs it, with its own options
        (so no progress here)."""

    def work(self, prompt: Prompt, pair: Pair, settings: RunSettings, continue_: bool) -> Runnable:
        session = RemoteSession(self.url, str(pair.main), pair.draft, self.api_key)
        work = streamed(session, prompt, settings, continue_=continue_)
        return Runnable(work, f"specdec {pair.main} on {self.url}")

    def _drafts(self, main: str) -> dict[str, Any]:
        return self._session.get(f"/api/v0/drafts/{quote(main)}")


def _details(model: dict[str, Any]) -> str:
    """A served model's tooltip: its architecture and quantization, as the server lists them."""
    facts = [f for f in (model.get("arch"), model.get("quantization")) if f and f != "none"]
    return " · ".join(facts)
