"""Earlier generations as a source of drafts, as SuffixDecoding uses them.

A reply regenerated, a second pass over the same code, the same question in another
notebook: what the model wrote before is often what it writes again, and the text is
no longer in the prompt. Each finished generation's tokens are indexed once
(`NGramIndex`) and kept per vocabulary, so tokens of one tokenizer never draft for
another, within fixed bounds: `HISTORY_TOKENS` tokens in at most `HISTORY_DOCUMENTS`
generations per vocabulary (the oldest go first), for at most `HISTORY_VOCABULARIES`
vocabularies (the least recently used goes first). With four n-gram sizes an indexed
token costs about 0.5 KB, so one full vocabulary history takes about 17 MB.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

from ..models.vocabulary import VocabularyFacts
from .ngrams import NGramIndex

HISTORY_TOKENS = 32_768  # per vocabulary: some 60 code-edit replies of 500 tokens
HISTORY_DOCUMENTS = 64  # per vocabulary; a lookup visits each, newest first
HISTORY_VOCABULARIES = 4  # models of other tokenizers loaded in one process
HISTORY_NGRAMS = (5, 4, 3, 2)  # the n-gram sizes prompt lookup re-finds its place by
MIN_DOCUMENT = 8  # tokens: a shorter generation has nothing worth copying


class HistoryIndex:
    """Earlier generations of one vocabulary, each indexed by its n-grams, newest first.

    Safe to read while another thread adds: a lookup walks a snapshot of the documents.
    """

    def __init__(
        self,
        max_tokens: int = HISTORY_TOKENS,
        max_documents: int = HISTORY_DOCUMENTS,
        sizes: Sequence[int] = HISTORY_NGRAMS,
    ):
        if max_tokens < 1 or max_documents < 1:
            raise ValueError(
                f"a history needs room: got max_tokens={max_tokens}, max_documents={max_documents}"
            )
        self.max_tokens = max_tokens
        self.max_documents = max_documents
        self.sizes = tuple(sizes)
        self._documents: tuple[NGramIndex, ...] = ()  # newest first
        self._adding = threading.Lock()

    def add(self, tokens: Sequence[int]) -> None:
        """Keep a finished generation (its last `max_tokens` tokens at most); drop the oldest
        to stay within bounds; a repeat of a kept generation only moves it to the front."""
        tokens = list(tokens)[-self.max_tokens :]
        if len(tokens) < MIN_DOCUMENT:
            return
        with self._adding:
            others = [d for d in self._documents if d.tokens != tokens]
            kept = [NGramIndex(self.sizes, tokens)]
            total = len(tokens)
            for document in others[: self.max_documents - 1]:
                if total + len(document.tokens) > self.max_tokens:
                    break
                kept.append(document)
                total += len(document.tokens)
            self._documents = tuple(kept)

    def find(self, ngram: Sequence[int]) -> tuple[list[int], int] | None:
        """The newest generation holding `ngram` with a token after it, and where it starts."""
        for document in self._documents:
            start = document.find(ngram)
            if start is not None:
                return document.tokens, start
        return None

    @property
    def tokens(self) -> int:
        return sum(len(d.tokens) for d in self._documents)

    @property
    def documents(self) -> int:
        return len(self._documents)

    @property
    def entries(self) -> int:
        """n-gram entries held: at most `tokens` per n-gram size."""
        return sum(d.entries for d in self._documents)


class HistoryStore:
    """The process's histories, one per vocabulary, the most recently used few."""

    def __init__(self, max_vocabularies: int = HISTORY_VOCABULARIES):
        self.max_vocabularies = max_vocabularies
        self._by_vocabulary: OrderedDict[str, HistoryIndex] = OrderedDict()
        self._lock = threading.Lock()

    def for_vocabulary(self, key: str) -> HistoryIndex:
        with self._lock:
            index = self._by_vocabulary.pop(key, None) or HistoryIndex()
            self._by_vocabulary[key] = index
            while len(self._by_vocabulary) > self.max_vocabularies:
                self._by_vocabulary.popitem(last=False)
            return index

    def clear(self) -> None:
        with self._lock:
            self._by_vocabulary.clear()


HISTORY = HistoryStore()  # process-wide: every session of a vocabulary shares its history


def vocabulary_key(facts: VocabularyFacts) -> str:
    """A digest of everything that decides what a token id means: two models share a
    history only if every id is the same text."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{facts.vocab_type}\0{facts.size}\0".encode())
    for text in facts.token_texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()
