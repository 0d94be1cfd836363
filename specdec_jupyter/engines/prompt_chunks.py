"""The chunks exact mode reads a prompt in, so that a cached prefix is kept only where reading
the prompt afresh would give the same keys and values.

llama.cpp multiplies a call of 8 tokens or more with other kernels than a smaller one (its tiled
K-quant kernel), so a position's keys and values depend on the call that read it. Exact mode reads
every prompt in the same chunks, [0, G), [G, 2G), ... and the rest up to the prompt's last token,
so they depend on the prompt alone; a cached chunk is kept for a new prompt only where that prompt
would be read in the same chunk. The prompt's last token and everything after it are read in
calls of at most 7 tokens, which every kernel treats alike (engines/llamacpp.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Chunk = tuple[int, int]  # [start, stop) positions


@dataclass
class PromptChunks:
    """The prompt chunks a cache holds, contiguous from position 0, on a grid of `grid` tokens."""

    grid: int
    read: list[Chunk] = field(default_factory=list)

    def plan(self, end: int) -> list[Chunk]:
        """The chunks positions [0, end) are read in."""
        return [(start, min(start + self.grid, end)) for start in range(0, end, self.grid)]

    def reusable(self, common: int, end: int) -> int:
        """How many leading positions to keep for a prompt whose first `end` positions are read
        as chunks, when the cache shares its first `common` tokens: the chunks read as that
        prompt's plan reads them."""
        keep = 0
        for chunk, planned in zip(self.read, self.plan(end), strict=False):
            if chunk != planned or chunk[1] > common:
                break
            keep = chunk[1]
        return keep

    def record(self, chunk: Chunk) -> None:
        self.read.append(chunk)

    def cut(self, n_keep: int) -> None:
        """Forget the chunks a rollback to `n_keep` positions cuts into."""
        self.read = [chunk for chunk in self.read if chunk[1] <= n_keep]
