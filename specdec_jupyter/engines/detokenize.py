"""Token bytes to text, one token at a time, without breaking multi-byte characters.

A token may carry half of a UTF-8 character (byte-level BPE does this for emoji
and CJK); its text is then empty and the next token's text carries the whole
character.
"""

from __future__ import annotations

import codecs


class IncrementalDetokenizer:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def text_of(self, token_bytes: bytes) -> str:
        """The text this token completes (possibly empty)."""
        return self._decoder.decode(token_bytes)

    def flush(self) -> str:
        """Whatever is left when the stream ends: incomplete bytes become U+FFFD."""
        return self._decoder.decode(b"", final=True)
