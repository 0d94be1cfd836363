"""Where a short run of tokens last occurred in a growing token sequence.

Prompt lookup re-finds its place by the output's last few tokens; this index answers
"where did these n tokens occur before, with a token after them" in one dict lookup,
and grows with the sequence, so keeping it current costs microseconds a token.
"""

from __future__ import annotations

from collections.abc import Sequence


class NGramIndex:
    """The latest start of every n-gram (n in `sizes`) of `tokens` that has a token after it,
    so the sequence's own last n-gram never matches itself."""

    def __init__(self, sizes: Sequence[int], tokens: Sequence[int] = ()):
        self.sizes = tuple(sizes)
        self.tokens: list[int] = []
        self._latest: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in self.sizes}
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        done = len(self.tokens)
        self.tokens.extend(tokens)
        for n, table in self._latest.items():
            for start in range(max(done - n, 0), len(self.tokens) - n):
                table[tuple(self.tokens[start : start + n])] = start

    def find(self, ngram: Sequence[int]) -> int | None:
        """Where `ngram` last started, if it is indexed."""
        table = self._latest.get(len(ngram))
        return None if table is None else table.get(tuple(ngram))

    @property
    def entries(self) -> int:
        return sum(len(table) for table in self._latest.values())
