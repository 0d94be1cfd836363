"""Can this model draft for that one? One of three answers, per engine's rule, with reasons.

- The same vocabulary: the draft proposes the main model's tokens (token level). llama.cpp's
  rule is its `common_speculative_are_compatible`: the same vocabulary type; the same
  add-BOS flag and, when BOS is added, the same BOS id; the same for EOS; vocabulary sizes
  at most 128 apart; identical token text for every id from 5 up to the smaller size.
  MLX's rule is LM Studio mlx-engine's: equal vocabulary sizes.
- Another vocabulary: the draft proposes text, which the main model's tokenizer re-tokenizes
  (text level, decoding/text_drafts.py). Its note names the first difference and which
  sampling it supports: drawing from the tokens both vocabularies spell alike, with their
  share of the draft's vocabulary (models/shared_tokens.py), or greedy drafts only where
  they share too little.
- Unusable: a model that cannot be read, or that another engine runs; the reasons say why.

A draft that is not smaller than its main model is allowed, with a warning: it cannot make
anything faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..model_info import ModelInfo
from ..shared_tokens import MIN_SHARE, SharedTokens
from ..vocabulary import VocabularyFacts

MAX_VOCAB_SIZE_DIFFERENCE = 128  # llama.cpp's SPEC_VOCAB_MAX_SIZE_DIFFERENCE
FIRST_CHECKED_TOKEN = 5  # llama.cpp's SPEC_VOCAB_CHECK_START_TOKEN_ID
# The rule that decides for a main model as it is on disk, named after the engine it is from.
RULE_OF_FORMAT = {"gguf": "llama.cpp", "mlx": "mlx"}


TEXT_LEVEL_NOTE = (
    "another vocabulary ({difference}): drafts text, re-tokenized with the main model's "
    "tokenizer, greedily; when sampling, {sampling}"
)
UNCOUNTED_SAMPLING = (  # where the rule reads no tokens' bytes (MLX folders)
    "it samples from the tokens both vocabularies spell alike, counted once both are loaded "
    f"(its drafts stay greedy where they are under {MIN_SHARE:.0%} of its vocabulary), lossless"
)


@dataclass(frozen=True)
class Compatibility:
    """`compatible`: the draft can serve, at the token level or, with `text_level`, at the
    level of text (the note saying so leads its `warnings`, and `reasons` say why not at
    the token level); else `reasons` say why it cannot serve at all."""

    compatible: bool
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    text_level: bool = False

    @property
    def answer(self) -> str:
        """The three answers: "same vocabulary", "another vocabulary" or "unusable"."""
        if not self.compatible:
            return "unusable"
        return "another vocabulary" if self.text_level else "same vocabulary"


def across_vocabularies(
    token_rule: Compatibility, shared: Callable[[], SharedTokens] | None = None
) -> Compatibility:
    """A vocabulary rule's verdict once drafting text is allowed: a draft it refuses for
    its vocabulary's sake drafts text instead, keeping the rule's reasons; its note says how
    it samples, from the pair's `shared` tokens where they can be counted."""
    if token_rule.compatible:
        return token_rule
    sampling = shared().describe() if shared is not None else UNCOUNTED_SAMPLING
    note = TEXT_LEVEL_NOTE.format(difference=token_rule.reasons[0], sampling=sampling)
    return replace(
        token_rule, compatible=True, warnings=[note, *token_rule.warnings], text_level=True
    )


def llamacpp_compatibility(main: VocabularyFacts, draft: VocabularyFacts) -> Compatibility:
    reasons: list[str] = []
    if main.vocab_type != draft.vocab_type:
        reasons.append(f"vocabulary types {main.vocab_type} vs {draft.vocab_type}")
    for name, main_add, draft_add, main_id, draft_id in (
        ("BOS", main.add_bos, draft.add_bos, main.bos_id, draft.bos_id),
        ("EOS", main.add_eos, draft.add_eos, main.eos_id, draft.eos_id),
    ):
        if main_add != draft_add:
            reasons.append(f"add-{name} {_flag(main_add)} vs {_flag(draft_add)}")
        elif main_add and main_id != draft_id:
            reasons.append(f"{name} token ids {main_id} vs {draft_id}")
    if abs(main.size - draft.size) > MAX_VOCAB_SIZE_DIFFERENCE:
        reasons.append(
            f"vocabulary sizes {main.size} vs {draft.size} "
            f"(more than {MAX_VOCAB_SIZE_DIFFERENCE} apart)"
        )
    for token_id in range(FIRST_CHECKED_TOKEN, min(main.size, draft.size)):
        main_text, draft_text = main.token_texts[token_id], draft.token_texts[token_id]
        if main_text != draft_text:
            reasons.append(f"token {token_id}: {main_text!r} vs {draft_text!r}")
            break
    return Compatibility(compatible=not reasons, reasons=reasons)


def same_vocabulary(main: VocabularyFacts, draft: VocabularyFacts) -> bool:
    """Whether the draft's token ids are the main model's (llama.cpp's rule, from the facts a
    loaded engine reports whatever runs it): else it can only draft text."""
    return llamacpp_compatibility(main, draft).compatible


def _flag(value: bool) -> str:
    return "true" if value else "false"


def mlx_compatibility(main_vocab_size: int | None, draft_vocab_size: int | None) -> Compatibility:
    if main_vocab_size is None or draft_vocab_size is None:
        return Compatibility(False, ["vocabulary size unknown (no tokenizer.json or vocab.json)"])
    if main_vocab_size != draft_vocab_size:
        return Compatibility(False, [f"vocabulary sizes {main_vocab_size} vs {draft_vocab_size}"])
    return Compatibility(True)


def size_warnings(main: ModelInfo, draft: ModelInfo) -> list[str]:
    """A warning when the draft has at least as many parameters as the main model."""
    if main.parameters is None or draft.parameters is None or draft.parameters < main.parameters:
        return []
    return [
        f"the draft is not smaller than the main model ({draft.size_label} vs "
        f"{main.size_label}): it will not speed anything up"
    ]
