"""An engine whose next token is scripted, with tokens that split a character in two.

Token ids 0-255 are single bytes; GOOSE_HEAD and GOOSE_TAIL are the two halves of the
4-byte "🪿", so a generation can stop inside the character. The script maps a token to
the one that follows it (a goose's head to its tail and back); its logits put almost all
probability there, so greedy and sampled runs alike follow it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from specdec_jupyter.engines.base import ChatMessage, read_reusing_prefix, require_room
from specdec_jupyter.models.vocabulary import VocabularyFacts

GOOSE = "🪿"
GOOSE_HEAD, GOOSE_TAIL, END = 256, 257, 258
PIECES = {GOOSE_HEAD: GOOSE.encode()[:2], GOOSE_TAIL: GOOSE.encode()[2:]}
GEESE = {GOOSE_HEAD: GOOSE_TAIL, GOOSE_TAIL: GOOSE_HEAD}


class ScriptedEngine:
    n_vocab = END + 1
    backend = "scripted (numpy, CPU)"
    exact = True
    n_seq = 1

    def __init__(self, script: Mapping[int, int] = GEESE, n_ctx: int = 256, name: str = "script"):
        self.name = name
        self.n_ctx = n_ctx
        self.script = dict(script)
        self._tokens: list[int] = []

    @property
    def tokens(self) -> list[int]:
        return self._tokens

    def sequence(self, index: int) -> ScriptedEngine:
        return (self,)[index]

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        tokens: list[int] = []
        for char in text:
            tokens += [GOOSE_HEAD, GOOSE_TAIL] if char == GOOSE else list(char.encode())
        return tokens

    def chat_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        return self.tokenize(messages[-1]["content"])

    def token_bytes(self, token: int) -> bytes:
        return b"" if token == END else PIECES.get(token, bytes([token % 256]))

    def token_pieces(self) -> list[bytes]:
        return [self.token_bytes(token) for token in range(self.n_vocab)]

    def is_end_of_generation(self, token: int) -> bool:
        return token == END

    def read_prompt(self, prompt: Sequence[int]) -> np.ndarray:
        return read_reusing_prefix(self, prompt)

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        require_room(self.name, len(self._tokens), len(tokens), self.n_ctx)
        self._tokens.extend(tokens)
        rows = np.zeros((n_logits, self.n_vocab), np.float32)
        for row, token in zip(rows, self._tokens[len(self._tokens) - n_logits :], strict=True):
            row[self.script.get(token, END)] = 12.0
        return rows

    def rollback(self, n_keep: int) -> None:
        del self._tokens[n_keep:]

    def vocabulary(self) -> VocabularyFacts:
        texts = tuple(self.token_bytes(t).decode("utf-8", "replace") for t in range(self.n_vocab))
        return VocabularyFacts("scripted", self.n_vocab, None, END, False, False, texts)

    def close(self) -> None:
        self._tokens.clear()
