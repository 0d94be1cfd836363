"""Choosing a chat's models: what the draft selector offers a main model, which draft a
choice means, and the draft the user picked for each main model, so switching away and back
brings it back (if it still fits). Keys are a service's model keys; "" is no draft."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import SpecDecError
from ...models.drafts.guidance import in_words
from ...sessions.pair import DEFAULT, Remembered
from ...sessions.service import Service


@dataclass(frozen=True)
class DraftOffer:
    """The drafts offered for `main`: compatible ones (with warnings), incompatible ones (with
    each reason), as selector entries, the default draft ("" for none), and with no compatible
    one, what to do instead (`guidance`, in words)."""

    main: str
    compatible: list[dict[str, Any]]
    incompatible: list[dict[str, Any]]
    default: str
    guidance: str = ""

    @classmethod
    def of(cls, service: Service, main: str) -> DraftOffer:
        compatible, incompatible = service.drafts(main)
        return cls(
            main,
            [choice.to_dict() for choice in compatible],
            [{**choice.to_dict(), "notes": [in_words(choice.notes)]} for choice in incompatible],
            service.default_draft(main) or "",
            "" if compatible else service.draft_guidance(main, len(incompatible)),
        )

    def fits(self, key: str) -> bool:
        return any(choice["key"] == key for choice in self.compatible)

    def key_of(
        self, draft: str | Remembered | None, service: Service, label: Callable[[str], str]
    ) -> str:
        """The key of the draft `draft` names: the default when it fits (DEFAULT), "" for none;
        a draft that cannot serve `main` is refused with the reasons."""
        if draft is DEFAULT:
            return self.default if self.fits(self.default) else ""
        if draft is None:
            return ""
        key = service.key_of(draft)
        if not self.fits(key):
            reasons = next((m["notes"] for m in self.incompatible if m["key"] == key), [])
            raise SpecDecError(
                f"{label(key)} cannot draft for {label(self.main)}"
                + (f": {'; '.join(reasons)}" if reasons else "")
                + ". Pick a draft from the list, or none."
            )
        return key


@dataclass
class ChosenDrafts:
    """The draft the user picked for each main model ("" for none)."""

    picked: dict[str, str] = field(default_factory=dict)

    def pick(self, main: str, draft: str) -> None:
        self.picked[main] = draft

    def for_main(self, offer: DraftOffer) -> str | Remembered | None:
        """The draft to show with `offer`'s main model: the one picked for it while it still
        fits, none if none was picked, else the default."""
        picked = self.picked.get(offer.main, DEFAULT)
        if picked is DEFAULT or (picked and not offer.fits(picked)):
            return DEFAULT
        return picked or None
