"""A server's models as the chat widget's selectors and runs see them: `EngineService`'s
interface over `specdec-jupyter serve`, so `ChatWidget(server=URL)` works as it does here."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..decoding.events import GenerationStats
from ..engines.registry import LoadOptions
from ..errors import SpecDecError, UnknownModelError
from ..progress import ProgressListener
from .generation import Emit, Generation, ShouldStop
from .remote import RemoteSession
from .service import Choice
from .session import Prompt


class RemoteService:
    """Selectors and runs on the server at `url`; model keys are the server's ids."""

    engine = "server"

    def __init__(self, url: str, api_key: str | None = None):
        self.url, self.api_key = url.rstrip("/"), api_key
        self._session = RemoteSession(self.url, "", api_key=api_key)
        self._listed = self._session.models()

    @property
    def kind(self) -> RemoteService:
        return self  # the widget asks its service's kind whether it can run; a server can

    def require_available(self) -> None:
        """The server answered when this service was made."""

    def models(self) -> list[Choice]:
        return [Choice(m["id"], m["id"], details=_details(m)) for m in self._listed]

    def default_main(self) -> str | None:
        gguf = [m["id"] for m in self._listed if m.get("compatibility_type") == "gguf"]
        ids = gguf or [m["id"] for m in self._listed]
        return ids[0] if ids else None

    def key_of(self, reference: str) -> str:
        if reference not in {m["id"] for m in self._listed}:
            raise UnknownModelError(f"{self.url} serves no model {reference!r}")
        return reference

    def drafts(self, main: str) -> tuple[list[Choice], list[Choice]]:
        listed = self._drafts(main)
        about = {m["id"]: _details(m) for m in self._listed}

        def choices(entries: list[dict[str, Any]]) -> list[Choice]:
            return [
                Choice(e["id"], e["id"], tuple(e["notes"]), about.get(e["id"], "")) for e in entries
            ]

        return choices(listed["compatible"]), choices(listed["incompatible"])

    def default_draft(self, main: str) -> str | None:
        return self._drafts(main)["default"]

    def set_default_draft(self, main: str, draft: str | None) -> None:
        raise SpecDecError(
            "default drafts of a server are kept on its machine; set them there "
            "(EngineManager.set_default_draft), or name the draft in each request"
        )

    def load_options(self, gpu_layers: int | None, draft_gpu_layers: int | None) -> dict:
        """The server loads with its own options; none are sent from here."""
        return {}

    def prepare(
        self,
        main: str,
        draft: str | None,
        *,
        on_progress: ProgressListener | None = None,
        **load: LoadOptions | None,
    ) -> None:
        """The server loads a model when the first request needs it (so no progress here)."""

    def start(
        self, prompt: Prompt, *, main: str, draft: str | None, on_event=None, on_end=None, **options
    ) -> Generation:
        session = RemoteSession(self.url, main, draft, self.api_key)

        def work(emit: Emit, should_stop: ShouldStop) -> GenerationStats:
            for event in session.stream(prompt, should_stop=should_stop, **options):
                emit(event)
            if session.last_stats is None:  # stopped before the last chunk
                return GenerationStats(stop_reason="userStopped")
            return session.last_stats

        return Generation(
            work, name=f"specdec {main} on {self.url}", on_event=on_event, on_end=on_end
        )

    def _drafts(self, main: str) -> dict[str, Any]:
        return self._session.get(f"/api/v0/drafts/{quote(main)}")


def _details(model: dict[str, Any]) -> str:
    """A served model's tooltip: its architecture and quantization, as the server lists them."""
    facts = [f for f in (model.get("arch"), model.get("quantization")) if f and f != "none"]
    return " · ".join(facts)
