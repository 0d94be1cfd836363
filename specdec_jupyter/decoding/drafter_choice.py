"""Which drafter a run uses: by draft mode, and by whether the draft model shares the main
model's vocabulary (token-level drafts, drafters.py) or not (text-level, text_drafts.py)."""

from __future__ import annotations

from collections.abc import Sequence

from ..engines.base import Engine
from ..errors import SpecDecError
from ..models.shared_tokens import SharedTokens
from ..settings import DraftMode
from .drafters import Drafter, HybridDrafter, ModelDrafter, PromptLookupDrafter
from .history import HistoryIndex
from .text_drafts import TextDrafter


def make_drafter(
    mode: DraftMode | None,
    draft_engine: Engine | None,
    history: HistoryIndex | None = None,
    *,
    main: Engine | None = None,
    draft_prompt: Sequence[int] | None = None,
    shared: SharedTokens | None = None,
) -> Drafter | None:
    """The drafter for a mode (checked already: `settings.check_draft_mode`): "model" (the
    draft model), "lookup" (copying from the context and `history`, no model) or "hybrid"
    (both); None is plain decoding. With `draft_prompt` (the conversation in the draft
    model's own chat template and tokens) the draft model has another vocabulary than
    `main` and drafts text; `shared`, the tokens both spell alike, when the pair's are known
    (else it finds them if it samples)."""

    if mode is None:
        return None
    if mode == "lookup":
        return PromptLookupDrafter(history=history)
    if draft_engine is None:
        raise SpecDecError(
            f'draft mode "{mode}" needs a draft model: load one with load(main, draft=...), '
            'or use draft_mode="lookup", which needs none'
        )
    if draft_prompt is None:
        model: Drafter = ModelDrafter(draft_engine)
    elif main is None:
        raise SpecDecError("a draft of another vocabulary drafts text for a main model: pass main")
    else:
        model = TextDrafter(draft_engine, main, draft_prompt, shared)
    return model if mode == "model" else HybridDrafter(PromptLookupDrafter(history=history), model)
