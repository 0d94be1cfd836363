"""Copying with edits: follow the text being copied, and find the way back after a change.

A code edit returns most of its input unchanged, with a few changes: a name replaced,
type hints or a docstring added, a line fixed or removed. A drafter that only looks up
the output's last few tokens (prompt lookup's n-grams) loses its place at every change
and finds it again only a few tokens after it. `EditAwareCopier` keeps pointers into
the text it copies from (the context, or an earlier generation) and, when the output
departs from the pointer, keeps every likely reading of the edit alive:

- a substitution: the output's token replaced the source's (skip the source token, or
  a few: a two-token name renamed to one);
- an insertion: the output's token is new (stay);
- a deletion: the source lost a few tokens (skip ahead to where the token occurs).

The next tokens tell them apart: readings that predict them survive, the others go.
Until they do, it drafts from the reading whose shift (source tokens skipped less
output tokens written) is nearest the last resolved edit's, so in a run of similar
edits (every `records` renamed, every parameter typed) each one costs one plain step.
Alongside, it re-finds its place as plain prompt lookup does, by the output's last n
tokens (n = 5 … 2): an edit too big to bridge, or a jump elsewhere in the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .history import HistoryIndex
from .ngrams import NGramIndex

MAX_SKIP = 4  # source tokens a deletion may skip before the next copied token
MAX_READINGS = 32  # readings kept at once: every place an edit of MAX_EDIT tokens may end
MAX_EDIT = 24  # output tokens an edit may run before its readings are given up
EDIT_EVIDENCE = 1.5  # an edit's reading of an established copy: more than a 1-gram match
# anywhere, less than a 2-gram (the n-gram is right more often on real edits)


@dataclass(frozen=True, eq=False)  # compared by identity: `text` may be a long list
class Pointer:
    """A reading of where the copy stands: the next token is expected at `text[at]`.

    `run` counts the tokens matched in a row just before it; `evidence` is what the
    reading is worth: the run, but through an edit the copy's earlier run still counts
    (up to `EDIT_EVIDENCE`). `shift`, during an edit, is the source tokens it skipped
    less the output tokens written; `live` marks the context itself (which grows) rather
    than an earlier generation.
    """

    text: Sequence[int]
    at: int
    run: int
    evidence: float
    shift: int = 0
    live: bool = True

    def advanced(self) -> Pointer:
        """This reading after its expected token came."""
        return replace(self, at=self.at + 1, run=self.run + 1, evidence=self.evidence + 1)

    def edited(self, skip: int, shift: int, matched: bool = False) -> Pointer:
        """This reading `skip` source tokens on, after an output token it did not expect
        (`matched`: the token is the one just skipped to, as after a deletion)."""
        evidence = min(self.evidence, EDIT_EVIDENCE) + matched
        return replace(self, at=self.at + skip, run=int(matched), evidence=evidence, shift=shift)

    def settled(self) -> Pointer:
        """This reading once the edit is over: its shift starts again from 0."""
        return replace(self, shift=0)


class EditAwareCopier:
    """Follows the context token by token and guesses what comes next by copying.

    `follow(context)` reads the tokens added since the last call (from scratch when the
    context changed); `guess(k)` is up to k tokens from the best reading and the
    evidence for it (tokens matched in a row, 0 right after an edit).
    """

    def __init__(
        self,
        max_ngram: int = 5,
        min_ngram: int = 2,
        history: HistoryIndex | None = None,
    ):
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError(f"need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}")
        self.sizes = range(max_ngram, min_ngram - 1, -1)
        self.history = history
        self._start()

    def _start(self) -> None:
        """Forget the text followed: a new context is read from its first token."""
        self._index = NGramIndex(self.sizes)
        self._readings: list[Pointer] = []
        self._editing = 0  # output tokens since the readings last matched
        self._last_shift = 0  # the shift of the last edit resolved

    @property
    def context(self) -> list[int]:
        return self._index.tokens

    def follow(self, context: Sequence[int]) -> None:
        """Read the tokens added since the last call. Of a long stretch (a prompt) only the
        last `MAX_EDIT` tokens are followed, the rest just indexed: the readings at its end
        are found again by n-gram within them, at a fraction of the cost."""
        done = len(self.context)
        if context[:done] != self.context:
            self._start()
            done = 0
        skipped = max(done, len(context) - MAX_EDIT)
        self._index.extend(context[done:skipped])
        for i in range(skipped, len(context)):
            self._index.extend(context[i : i + 1])
            self._read(i)

    def guess(self, k: int) -> tuple[list[int], Pointer | None]:
        """Up to k tokens from the best reading, and the reading."""
        best = self.best
        if best is None:
            return [], None
        text, end = best.text, len(best.text)
        draft: list[int] = []
        for position in range(best.at, best.at + k):
            if position < end:
                draft.append(text[position])
            elif best.live:  # copying runs into the end: go on from the draft itself
                draft.append(draft[position - end])
            else:
                break
        return draft, best

    @property
    def best(self) -> Pointer | None:
        """The reading with the most evidence, then the most tokens matched since an edit;
        in an edit, the one shifted most like the last edit; then the context before
        history, then the latest place."""
        return self._readings[0] if self._readings else None

    def _read(self, i: int) -> None:
        """Move the readings past token i of the context, then add the n-gram re-find."""
        token = self.context[i]
        matched = [p.advanced() for p in self._readings if self._expected(p, i) == token]
        if matched:
            if self._editing:
                self._last_shift = min(matched, key=self._preference).shift
            self._editing = 0
            readings = [p.settled() for p in matched]
        elif self._readings and self._editing < MAX_EDIT:
            self._editing += 1
            readings = [r for p in self._readings for r in self._edited(p, token, i)]
        else:
            self._editing = 0
            readings = []
        found = self._refind(i)
        self._readings = self._kept([*readings, *found])

    def _edited(self, p: Pointer, token: int, i: int) -> list[Pointer]:
        """The readings of an edit at `p` that wrote `token`: inserted (skip 0 source
        tokens), substituted for 1…MAX_SKIP + 1 source tokens (a two-token name renamed to
        one), or written after a deletion of 1…MAX_SKIP source tokens (it is the token
        skipped to)."""
        readings = [p.edited(skip, p.shift + skip - 1) for skip in range(MAX_SKIP + 2)]
        for skip in range(1, MAX_SKIP + 1):
            if self._expected(p.edited(skip, p.shift), i) == token:
                readings.append(p.edited(skip + 1, p.shift + skip, matched=True))
        return readings

    def _refind(self, i: int) -> list[Pointer]:
        """Where the context's last n tokens (up to token i) occurred before, the longest n
        first: in the context, else in the newest earlier generation holding them."""
        context = self.context
        for n in self.sizes:
            if i + 1 <= n:
                continue
            ngram = context[i + 1 - n : i + 1]
            start = self._index.find(ngram)
            if start is not None:
                return [Pointer(context, start + n, n, n)]
            found = self.history.find(ngram) if self.history is not None else None
            if found is not None:
                return [Pointer(found[0], found[1] + n, n, n, live=False)]
        return []

    def _kept(self, readings: list[Pointer]) -> list[Pointer]:
        """One reading per place (the best evidence), the `MAX_READINGS` most preferred, and
        the one that takes every token since the copy left off as inserted (the lowest
        shift), however long the insertion (a docstring) runs."""
        by_place: dict[tuple[int, int], Pointer] = {}
        for p in readings:
            if p.at >= len(p.text):
                continue  # past what it can copy (in the context: the token to come itself)
            place = (id(p.text), p.at)
            if place not in by_place or self._preference(p) < self._preference(by_place[place]):
                by_place[place] = p
        ranked = sorted(by_place.values(), key=self._preference)
        kept = ranked[:MAX_READINGS]
        inserted = min(ranked, key=lambda p: p.shift, default=None)
        return kept if inserted is None or inserted in kept else [*kept, inserted]

    def _preference(self, p: Pointer) -> tuple[float, int, int, bool, int]:
        return (-p.evidence, -p.run, abs(p.shift - self._last_shift), not p.live, -p.at)

    def _expected(self, p: Pointer, i: int) -> int | None:
        """The token `p` predicts at context position i; None past what it can see (a live
        pointer must point before i, or it would predict the token from itself)."""
        limit = i if p.live else len(p.text)
        return p.text[p.at] if p.at < limit else None
