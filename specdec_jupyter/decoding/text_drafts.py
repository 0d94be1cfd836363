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

The draft is greedy, so each proposed token is a point mass (`Draft.deterministic`):
rejection sampling accepts it with the main model's probability p and on rejection draws
from p without it, which keeps sampling lossless at any temperature, as for prompt lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from ..engines.base import Engine, text_tokens
from .drafters import Draft, DraftOption, DraftSteps, rewind
from .sampling import Randomness, SamplingSettings

DRAFT_STEPS_PER_TOKEN = 2  # the draft's tokens allowed per main token proposed, plus one


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


class TextDrafter:
    """Drafts text with a model of another vocabulary; its tokens are the main model's."""

    def __init__(self, engine: Engine, main: Engine, prompt: Sequence[int]):
        self.engine = engine
        self.main = main
        self.prompt = list(prompt)  # the conversation in the draft's template and tokens
        self.name = engine.name
        self._main_prompt = 0  # main-model tokens before the reply
        self._reply: list[int] = []  # the main model's reply, and its bytes
        self._reply_bytes = b""
        self._bytes: dict[int, bytes] = {}  # the draft's token texts, looked up once

    def prepare(self, context: Sequence[int]) -> None:
        self._main_prompt = len(context)
        self._reply, self._reply_bytes = [], b""
        self.engine.read_prompt(self.prompt)

    def options(self, context: Sequence[int], max_draft: int) -> list[DraftOption]:
        written = self._written(context[self._main_prompt :])
        if complete_length(written) < len(written):
            return []  # the reply ends inside a character: nothing whole to continue
        return [DraftOption(self.name, partial(self.propose, written))]

    def _written(self, reply: Sequence[int]) -> bytes:
        """The reply's bytes, adding those of the tokens new since the last round."""
        done = len(self._reply)
        if list(reply[:done]) != self._reply:
            done, self._reply_bytes = 0, b""
        self._reply = list(reply)
        self._reply_bytes += b"".join(self.main.token_bytes(t) for t in reply[done:])
        return self._reply_bytes

    def propose(
        self, written: bytes, k: int, sampling: SamplingSettings, rng: Randomness
    ) -> DraftSteps:
        """Up to k main-model tokens of the draft's greedy continuation of `written` (the
        reply so far, whole characters). The draft writes until its text holds more than k
        main-model tokens, so the k kept are followed by text and will not merge with it."""
        engine = self.engine
        unread = rewind(engine, self._context(written))
        logits = (yield (engine, unread, 1))[0]
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
        return Draft(
            proposed,
            [1.0] * len(proposed),
            source=self.name,
            caught_up=len(unread),
            deterministic=True,
            covered_by=self._covering(own, proposed),
            own_tokens=own,
        )

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
