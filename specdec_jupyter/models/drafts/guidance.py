"""What to say when no draft fits a main model: in words, with what would fit instead.

A draft must share the main model's vocabulary (token ids pass between the two as they are),
which in practice means a smaller model of the same family with the same tokenizer. Where the
catalog knows such a model it is named, with the command that fetches it; whatever the model,
drafting by copying from the prompt (draft mode lookup, `prompt-lookup`) needs no draft at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..catalog import CATALOG, CatalogModel
from ..metadata import read_model_info
from ..model_info import ModelInfo

LOOKUP = (
    "or draft by copying from the prompt (draft mode lookup, `prompt-lookup`), which needs no "
    "draft model"
)


def catalog_drafts_for(main: Path) -> list[CatalogModel]:
    """The catalog's drafts for the catalog model whose file `main` is (none for another)."""
    key = next((m.key for m in CATALOG.values() if m.filename == main.name), None)
    return [m for m in CATALOG.values() if key is not None and key in m.draft_for]


def no_draft_guidance(
    main_name: str, main: ModelInfo, others: int, found_elsewhere: Sequence[str] = ()
) -> str:
    """Why there is no draft for `main_name` among the `others` models judged, and what
    would fit: models found that fit (when `others` were only some), a catalog draft of the
    same family and vocabulary, or lookup."""
    family = main.architecture or "its family"
    vocabulary = f"{main.vocab_type or '?'} vocabulary of {main.vocab_size or '?'} tokens"
    judged = {
        0: "no other model was found to judge",
        1: f"the one model judged does not share {main_name}'s {vocabulary}",
    }.get(others, f"none of the {others} models judged shares {main_name}'s {vocabulary}")
    text = f"No draft model of the same vocabulary: {judged}. "
    if found_elsewhere:
        fits = ", ".join(found_elsewhere)
        return text + f"Of the other models found, these do: {fits}; {LOOKUP}."
    catalog = catalog_drafts_for(main.path)
    if catalog:
        fetch = " ".join(m.key for m in catalog)
        names = ", ".join(m.key for m in catalog)
        return (
            text + f"The catalog's draft for it is {names} (`specdec-jupyter models fetch "
            f"{fetch}`); {LOOKUP}."
        )
    return (
        text + f"A draft is a smaller model of the same family ({family}) with the same "
        f"tokenizer; {LOOKUP}."
    )


VOCABULARY_FACTS = ("vocabulary", "add-", "BOS", "EOS", "token ")  # what compat.py compares


def guidance_for(main_name: str, main_path: Path, others: int) -> str:
    """`no_draft_guidance` for the model at `main_path`; a model with no file to read (a
    built-in one) is pointed to lookup alone."""
    info = read_model_info(main_path) if main_path.exists() else None
    if info is None or not info.usable:
        return f"No compatible draft model for {main_name}; {LOOKUP}."
    return no_draft_guidance(main_name, info, others)


def in_words(reasons: Sequence[str]) -> str:
    """A verdict's reasons, led by what they mean where they are the vocabulary's."""
    joined = "; ".join(reasons)
    if reasons and all(reason.startswith(VOCABULARY_FACTS) for reason in reasons):
        return f"another vocabulary ({joined})"
    return joined
