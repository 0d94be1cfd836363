"""Drafting with a model of another vocabulary, at the level of text.

A draft from another family (SmolLM2-135M for Qwen2.5-Coder) cannot propose the main
model's token ids, but it can propose text: as Hugging Face's Universal Assisted
Generation does, the draft writes a few of its own tokens, their text is tokenized with
the main model's tokenizer, and the main model verifies those tokens in one call as it
verifies any draft. Verification is unchanged, so greedy output stays plain decoding's.

The draft keeps its own context: the conversation in its own chat template and tokens
(`prompt`), then the main model's reply so far in its own tokens. Each round it is brought
to the reply's text: its cached tokens stand as far as their text spells a prefix of the
reply (ending on a whole character), and the rest of the reply is fed in its own tokens.
So its rejected guesses are dropped without a call, and what it guessed right is kept.

Bytes split across tokens: when the reply so far ends inside a character (the main model
wrote half an emoji), the draft has no whole text to continue and the round is a plain
step; when the draft's text ends inside a character, those bytes wait for the token that
completes them and are not proposed.

Under greedy decoding the draft writes greedily, and each proposed token is a point mass
(`Draft.deterministic`). Sampling (T > 0) is Timor et al. (2025)'s token-level intersection:
the draft draws each token from its own distribution (after the run's temperature, top-k,
top-p and min-p, as a draft of the same vocabulary does) restricted to the tokens both
vocabularies spell alike (models/shared_tokens.py) and renormalised. The main model gets the
drawn token's id in its vocabulary, and verification gets that restricted distribution on
the main model's ids, zero elsewhere, as q: rejection sampling judges it as any draft's, so
the output keeps the main model's distribution. The draft reads the token it drew back in
its own id (one token for one, nothing re-tokenized); a seeded run draws it with the keyed
noise of the main model's position (sampling.KeyedNoise), as a draft of the same vocabulary
does.

Where the shared tokens cannot give a fair q, the draft writes greedily as text instead, each
token a point mass (a one-hot row where the round also sampled), which rejection sampling
accepts with the main model's probability p and on rejection draws from p without it:
lossless as well, as for prompt lookup. That is the rest of a round from a step where the
shared tokens hold under `MIN_SHARED_MASS` of the draft's probability (the draft means to end,
or top-p left it only tokens the main model spells otherwise), and every round of a pair
whose vocabularies share under `shared_tokens.MIN_SHARE` of the draft's (compat's note says
which a pair does).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from functools import partial

import numpy as np

from ..engines.base import Engine, EngineCall, text_tokens
from ..models.shared_tokens import SharedTokens, shared_tokens
from .drafters import Draft, DraftOption, DraftSteps, rewind
from .sampling import Randomness, SamplingSettings, distribution, draw

DRAFT_STEPS_PER_TOKEN = 2  # the draft's tokens allowed per main token proposed, plus one
MIN_SHARED_MASS = 0.1  # a step with less of the draft's probability shared is written greedily


def complete_length(data: bytes) -> int:
    """The length of the longest prefix of UTF-8 `data` that does not end inside a character."""
    start = len(data) - 1
    while start >= 0 and len(data) - start < 4 and data[start] & 0xC0 == 0x80:
        start -= 1  # back over continuation bytes to the character's first byte
    if start < 0 or data[start] < 0xC0:
        return len(data)  # ASCII last, or stray continuation bytes: nothing waits
    needed = 2 if data[start] < 0xE0 else 3 if data[start] < 0xF0 else 4
    return len(data) if len(data) - start >= needed else start


def _decoded(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")  # a stray byte must not stop drafting


def _starts_character(data: bytes, at: int) -> bool:
    return at == len(data) or data[at] & 0xC0 != 0x80


def shared_between(draft: Engine, main: Engine) -> SharedTokens:
    """The tokens `draft` and `main` spell alike (models/shared_tokens.py), where several
    main-model tokens spell the same bytes taking the one its tokenizer gives for them."""

    def tokenizers_choice(piece: bytes, ids: list[int]) -> int:
        text = piece.decode("utf-8", errors="ignore")
        tokens = text_tokens(main, text) if text.encode() == piece else []
        return tokens[0] if len(tokens) == 1 and tokens[0] in ids else ids[0]

    return shared_tokens(draft.token_pieces(), main.token_pieces(), tokenizers_choice)


class TextDrafter:
    """Drafts text with a model of another vocabulary; its tokens are the main model's."""

    def __init__(
        self,
        engine: Engine,
        main: Engine,
        prompt: Sequence[int],
        shared: SharedTokens | None = None,
    ):
        self.engine = engine
        self.main = main
        self.prompt = list(prompt)  # the conversation in the draft's template and tokens
        self.name = engine.name
        self._main_prompt = 0  # main-model tokens before the reply
        self._reply: list[int] = []  # the main model's reply, and its bytes
        self._reply_bytes = b""
        self._bytes: dict[int, bytes] = {}  # the draft's token texts, looked up once
        self._shared = shared

    def prepare(self, context: Sequence[int]) -> None:
        self._main_prompt = len(context)
        self._reply, self._reply_bytes = [], b""
        self.engine.read_prompt(self.prompt)

    def options(self, context: Sequence[int], max_draft: int) -> list[DraftOption]:
        written = self._written(context[self._main_prompt :])
        if complete_length(written) < len(written):
            return []  # the reply ends inside a character: nothing whole to continue
        return [DraftOption(self.name, partial(self.propose, written, len(context)))]

    def _written(self, reply: Sequence[int]) -> bytes:
        """The reply's bytes, adding those of the tokens new since the last round."""
        done = len(self._reply)
        if list(reply[:done]) != self._reply:
            done, self._reply_bytes = 0, b""
        self._reply = list(reply)
        self._reply_bytes += b"".join(self.main.token_bytes(t) for t in reply[done:])
        return self._reply_bytes

    def propose(
        self, written: bytes, position: int, k: int, sampling: SamplingSettings, rng: Randomness
    ) -> DraftSteps:
        """Up to k main-model tokens after `written` (the reply so far, whole characters),
        the first at `position` in the main model's text: sampled from the shared tokens
        while sampling can (`_sample`), then written greedily as text (`_write`)."""
        engine = self.engine
        unread = rewind(engine, self._context(written))
        logits: np.ndarray | None = (yield (engine, unread, 1))[0]
        draft = Draft(source=self.name, caught_up=len(unread))
        shared = None if sampling.greedy else self.shared
        if shared is not None and shared.samples:
            logits = yield from self._sample(shared, logits, draft, k, sampling, rng, position)
        if logits is not None and len(draft) < k:
            yield from self._write(logits, draft, k - len(draft))
        draft.deterministic = not draft.probs
        return draft

    @property
    def shared(self) -> SharedTokens:
        """The tokens both vocabularies spell alike: handed over by the session, which keeps
        them for the pair, or found here once."""
        if self._shared is None:
            self._shared = shared_between(self.engine, self.main)
        return self._shared

    def _sample(
        self,
        shared: SharedTokens,
        logits: np.ndarray,
        draft: Draft,
        k: int,
        sampling: SamplingSettings,
        rng: Randomness,
        position: int,
    ) -> Generator[EngineCall, np.ndarray, np.ndarray | None]:
        """Draft tokens drawn from the draft's distribution restricted to the shared tokens
        (q: `SharedTokens.restricted`), each read back by the draft in its own id. At a step
        where the shared tokens hold under `MIN_SHARED_MASS` of it, the draft's logits there,
        for `_write` to go on greedily; None when the draft is done (k tokens, or its bytes
        end inside a character, which text cannot go on from)."""
        written = b""
        while True:
            probs = distribution(logits, sampling)
            q, mass = shared.restricted(probs)
            if mass < MIN_SHARED_MASS:
                return logits if complete_length(written) == len(written) else None
            token = draw(q, rng, position + len(draft))
            own = shared.draft_token(token, probs)
            piece = self._token_bytes(own)
            draft.tokens.append(token)
            draft.q.append(float(q[token]))
            draft.probs.append(q)
            draft.covered_by.append((_decoded(piece),))
            draft.own_tokens.append(own)
            written += piece
            if len(draft) == k:
                return None
            logits = (yield (self.engine, [own], 1))[0]

    def _write(self, logits: np.ndarray, draft: Draft, k: int) -> DraftSteps:
        """Up to k more main-model tokens of the draft's greedy continuation, each a point
        mass (a one-hot row of q where the draft also sampled). The draft writes until its
        text holds more than k main-model tokens, so the k kept are followed by text and
        will not merge with it."""
        engine = self.engine
        text = b""
        own: list[int] = []
        proposed: list[int] = []
        for step in range(1, DRAFT_STEPS_PER_TOKEN * k + 2):
            token = int(np.argmax(logits))
            if engine.is_end_of_generation(token):
                break
            own.append(token)
            text += self._token_bytes(token)
            proposed = text_tokens(self.main, _decoded(text[: complete_length(text)]))
            if len(proposed) > k or step == DRAFT_STEPS_PER_TOKEN * k + 1:
                proposed = proposed[: min(k, max(len(proposed) - 1, 0))]
                break
            logits = (yield (engine, [token], 1))[0]
        draft.tokens += proposed
        draft.q += [1.0] * len(proposed)
        draft.covered_by += self._covering(own, proposed)
        draft.own_tokens += own
        if draft.probs:
            draft.probs += [np.eye(1, self.main.n_vocab, token)[0] for token in proposed]
        return draft

    def _covering(self, own: list[int], proposed: list[int]) -> list[tuple[str, ...]]:
        """For each proposed main-model token, the texts of the draft's own tokens whose
        bytes overlap its bytes (the draft's tokens split the text elsewhere)."""
        ends, end = [], 0
        for token in own:
            end += len(self._token_bytes(token))
            ends.append(end)
        covering, start = [], 0
        for token in proposed:
            stop = start + len(self.main.token_bytes(token))
            covering.append(
                tuple(
                    _decoded(self._token_bytes(piece))
                    for piece, piece_end in zip(own, ends, strict=True)
                    if piece_end > start and piece_end - len(self._token_bytes(piece)) < stop
                )
            )
            start = stop
        return covering

    def _context(self, written: bytes) -> list[int]:
        """The draft's tokens for the conversation and `written`: its cached reply tokens as
        far as they spell `written` up to a whole character, then the rest in its tokens."""
        start = len(self.prompt)
        cached = self.engine.tokens
        own = cached[start:] if cached[:start] == self.prompt else []
        kept = covered = spelled = 0
        for i, token in enumerate(own, start=1):
            piece = self._token_bytes(token)
            if written[spelled : spelled + len(piece)] != piece:
                break
            spelled += len(piece)
            if _starts_character(written, spelled):
                kept, covered = i, spelled
        rest = _decoded(written[covered:])
        return [*self.prompt, *own[:kept], *(text_tokens(self.engine, rest) if rest else [])]

    def _token_bytes(self, token: int) -> bytes:
        piece = self._bytes.get(token)
        if piece is None:
            piece = self._bytes[token] = self.engine.token_bytes(token)
        return piece
