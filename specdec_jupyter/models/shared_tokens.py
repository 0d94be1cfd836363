"""The tokens two vocabularies share, which a draft of another vocabulary samples from.

Timor et al. (2025), "Lossless Speculative Decoding for Heterogeneous Vocabularies": a draft
whose vocabulary differs from the main model's can still propose the main model's tokens
when it samples only tokens that are, byte for byte, tokens of the main model too. Its
distribution restricted to those tokens and renormalised, put on the main model's ids, is a
proper q over the main vocabulary, and rejection sampling judges it as it judges any draft.

A draft token is shared when its bytes (`Engine.token_pieces`) are exactly one main-model
token's. Tokens that write nothing (control tokens, ends of generation) are never shared;
byte tokens are shared by their one byte. Where several draft tokens spell the same bytes (a
SentencePiece vocabulary has a byte token beside "A") each maps to that main token, and q
adds their probabilities; where several main tokens do, the map takes the one `prefer` picks
(the main model's tokenizer's own, which the model saw in training). The map is built once
per pair in ~0.1 s with dicts; each draft step is then two numpy operations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

MIN_SHARE = 0.1  # under this share of the draft's vocabulary shared, its drafts stay greedy


@dataclass(frozen=True, eq=False)
class SharedTokens:
    """`draft_ids[i]` spells the same bytes as main-model token `main_ids[i]`; the draft's
    vocabulary has `draft_size` tokens, the main model's `main_size`."""

    draft_ids: np.ndarray
    main_ids: np.ndarray
    draft_size: int
    main_size: int
    _draft_of: np.ndarray = field(init=False, repr=False)  # main id -> a draft id, or -1
    _several: dict[int, np.ndarray] = field(init=False, repr=False)  # main id -> draft ids

    def __post_init__(self) -> None:
        draft_of = np.full(self.main_size, -1, dtype=np.int64)
        draft_of[self.main_ids] = self.draft_ids
        counts = np.bincount(self.main_ids, minlength=self.main_size)
        several = {
            int(main): self.draft_ids[self.main_ids == main] for main in np.flatnonzero(counts > 1)
        }
        object.__setattr__(self, "_draft_of", draft_of)
        object.__setattr__(self, "_several", several)

    @property
    def count(self) -> int:
        return len(self.draft_ids)

    @property
    def share(self) -> float:
        """The share of the draft's vocabulary that is shared."""
        return self.count / self.draft_size if self.draft_size else 0.0

    @property
    def samples(self) -> bool:
        """Whether the vocabularies share enough for the draft to sample from (`MIN_SHARE`)."""
        return self.share >= MIN_SHARE

    def describe(self) -> str:
        """Which sampling a draft of this pair does, in words (compat's note says it)."""
        share = f"{self.share:.1%} of its vocabulary"
        if self.samples:
            return (
                f"it samples from the {self.count:,} tokens both vocabularies spell alike "
                f"({share}), lossless"
            )
        return (
            f"the vocabularies spell only {self.count:,} tokens alike ({share}, under "
            f"{MIN_SHARE:.0%}): its drafts stay greedy, lossless"
        )

    def restricted(self, probs: np.ndarray) -> tuple[np.ndarray, float]:
        """The draft's `probs` (over its vocabulary) on the shared tokens, renormalised and put
        on the main model's ids: q over the main vocabulary, zero elsewhere; and the mass the
        shared tokens had (q is all zeros when it is 0)."""
        kept = probs[self.draft_ids]
        mass = float(kept.sum())
        weights = kept / mass if mass > 0 else kept
        return np.bincount(self.main_ids, weights=weights, minlength=self.main_size), mass

    def draft_token(self, main_token: int, probs: np.ndarray) -> int:
        """The draft token that spells shared `main_token`: of several, the one the draft
        found likeliest (`probs`), which it then reads as its own."""
        several = self._several.get(main_token)
        if several is None:
            return int(self._draft_of[main_token])
        return int(several[np.argmax(probs[several])])


def shared_tokens(
    draft_pieces: Sequence[bytes],
    main_pieces: Sequence[bytes],
    prefer: Callable[[bytes, list[int]], int] | None = None,
) -> SharedTokens:
    """The shared tokens of two vocabularies given each token's bytes (b"" for a token that
    writes nothing, never shared). `prefer(piece, ids)` picks among main-model tokens that
    spell the same bytes; the lowest id without it."""
    owner: dict[bytes, int] = {}
    clashes: dict[bytes, list[int]] = {}
    for token, piece in enumerate(main_pieces):
        if piece:
            first = owner.setdefault(piece, token)
            if first != token:
                clashes.setdefault(piece, [first]).append(token)
    if prefer is not None:
        for piece, ids in clashes.items():
            owner[piece] = prefer(piece, ids)
    pairs = np.array(
        [(d, owner[piece]) for d, piece in enumerate(draft_pieces) if piece in owner],
        dtype=np.int64,
    ).reshape(-1, 2)
    return SharedTokens(pairs[:, 0], pairs[:, 1], len(draft_pieces), len(main_pieces))
