"""A toy engine: two n-gram language models in numpy over one small word vocabulary.

It stands behind the same `Engine` protocol as llama.cpp, so the whole
speculative loop runs instantly with no download: for teaching (the numbers are
small enough to read) and for fast tests. The main model is an interpolated
trigram model; the draft is a bigram model over the same words, so it agrees
with the main model often but not always. Both are trained at import time on a
short corpus shipped with the package.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from ..models.vocabulary import VocabularyFacts
from .base import ChatMessage, read_reusing_prefix, require_room

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
BOS, EOS, UNK = 1, 2, 3
NO_SPACE_BEFORE = {".", ",", "?", "!"}
WORD = re.compile(r"\w+|[^\w\s]")

# Interpolation weights of (trigram, bigram, unigram, uniform) for each model.
MAIN_WEIGHTS = (0.75, 0.2, 0.04, 0.01)
DRAFT_WEIGHTS = (0.0, 0.8, 0.15, 0.05)


def _corpus() -> list[list[str]]:
    text = (Path(__file__).with_name("toy_corpus.txt")).read_text()
    return [WORD.findall(line.lower()) for line in text.splitlines() if line.strip()]


class NGramModel:
    """Interpolated n-gram log-probabilities, counted once from the corpus."""

    def __init__(self, sequences: list[list[int]], size: int, weights: tuple[float, ...]):
        self.size = size
        self.weights = weights
        self.unigrams = np.zeros(size)
        self.bigrams: dict[int, Counter[int]] = {}
        self.trigrams: dict[tuple[int, int], Counter[int]] = {}
        for sequence in sequences:
            padded = [BOS, BOS, *sequence, EOS]
            for u, v, w in zip(padded, padded[1:], padded[2:], strict=False):
                self.unigrams[w] += 1
                self.bigrams.setdefault(v, Counter())[w] += 1
                self.trigrams.setdefault((u, v), Counter())[w] += 1
        self.unigrams /= self.unigrams.sum()
        self.log_probs = cache(self._log_probs)

    def _log_probs(self, u: int, v: int) -> np.ndarray:
        w3, w2, w1, w0 = self.weights
        probs = w1 * self.unigrams + w0 / self.size
        for weight, counts in ((w3, self.trigrams.get((u, v))), (w2, self.bigrams.get(v))):
            if weight and counts:
                total = sum(counts.values())
                for token, count in counts.items():
                    probs[token] += weight * count / total
        probs /= probs.sum()
        return np.log(probs).astype(np.float32)


class ToyEngine:
    """One n-gram model with the engine protocol's cache semantics (a token list); its
    `n_seq` sequences are token lists of their own on the same model."""

    backend = "toy (numpy, CPU)"
    exact = True  # each row is computed on its own, whatever the call holds

    def __init__(
        self,
        name: str,
        model: NGramModel,
        words: tuple[str, ...],
        n_ctx: int = 1024,
        n_seq: int = 1,
        first: ToyEngine | None = None,
    ):
        self.name = name
        self.n_vocab = len(words)
        self.n_ctx = n_ctx
        self.n_seq = n_seq
        self.words = words
        self._model = model
        self._ids = {word: i for i, word in enumerate(words)}
        self._tokens: list[int] = []
        if first is None:
            self._sequences: list[ToyEngine] = [self]
            for _ in range(n_seq - 1):
                self._sequences.append(ToyEngine(name, model, words, n_ctx, n_seq, self))
        else:
            self._sequences = first._sequences

    def sequence(self, index: int) -> ToyEngine:
        return self._sequences[index]

    @property
    def tokens(self) -> list[int]:
        return self._tokens

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return [BOS, *(self._ids.get(word, UNK) for word in WORD.findall(text.lower()))]

    def chat_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """A toy model has no chat format: it continues the last message's text."""
        return self.tokenize(messages[-1]["content"] if messages else "")

    def token_bytes(self, token: int) -> bytes:
        word = self.words[token]
        if token < len(SPECIAL_TOKENS):
            return b""
        return (word if word in NO_SPACE_BEFORE else " " + word).encode()

    def token_pieces(self) -> list[bytes]:
        return [b"" if token == EOS else self.token_bytes(token) for token in range(self.n_vocab)]

    def is_end_of_generation(self, token: int) -> bool:
        return token == EOS

    def read_prompt(self, prompt: Sequence[int]) -> np.ndarray:
        return read_reusing_prefix(self, prompt)

    def evaluate(self, tokens: Sequence[int], n_logits: int) -> np.ndarray:
        require_room(self.name, len(self._tokens), len(tokens), self.n_ctx)
        self._tokens.extend(tokens)
        end = len(self._tokens)
        rows = [self._row(position) for position in range(end - n_logits, end)]
        return np.stack(rows) if rows else np.empty((0, self.n_vocab), np.float32)

    def _row(self, position: int) -> np.ndarray:
        """Log-probabilities of the token after `position`, from the two tokens ending there."""
        u = self._tokens[position - 1] if position >= 1 else BOS
        return self._model.log_probs(u, self._tokens[position])

    def rollback(self, n_keep: int) -> None:
        del self._tokens[n_keep:]

    def vocabulary(self) -> VocabularyFacts:
        return VocabularyFacts("toy", self.n_vocab, BOS, EOS, True, False, self.words)

    def close(self) -> None:
        self._tokens.clear()


@cache
def _trained() -> tuple[tuple[str, ...], NGramModel, NGramModel]:
    sentences = _corpus()
    words = (*SPECIAL_TOKENS, *sorted({w for sentence in sentences for w in sentence}))
    ids = {word: i for i, word in enumerate(words)}
    sequences = [[ids[w] for w in sentence] for sentence in sentences]
    return (
        words,
        NGramModel(sequences, len(words), MAIN_WEIGHTS),
        NGramModel(sequences, len(words), DRAFT_WEIGHTS),
    )


def toy_engine(name: str, n_ctx: int = 1024, n_seq: int = 1) -> ToyEngine:
    """A fresh engine on one of the two toy models, "toy-trigram" or "toy-bigram"."""
    words, trigram, bigram = _trained()
    models = {"toy-trigram": trigram, "toy-bigram": bigram}
    return ToyEngine(name, models[name], words, n_ctx, n_seq)


def toy_pair() -> tuple[ToyEngine, ToyEngine]:
    """A fresh (main, draft) pair of toy engines sharing one vocabulary."""
    return toy_engine("toy-trigram"), toy_engine("toy-bigram")
