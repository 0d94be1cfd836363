"""A main model and its draft, with the options they load with: what a run is started on.

    Pair("qwen2.5-coder-1.5b")                          # the draft remembered for it, if any
    Pair("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", options=LoadOptions(n_ctx=8192))
    Pair("toy-trigram", None, engine="toy")             # no draft: plain decoding

Models are named as `engines.resolve` understands them (a server's ids, on a remote
service); the EngineManager resolves them when a run starts. `DEFAULT` is the one way to
say "the draft remembered for this main model".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..engines.resolve import ModelReference
from ..settings import LoadOptions


class Remembered(Enum):
    DEFAULT = "the draft remembered for the main model"

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = Remembered.DEFAULT


@dataclass(frozen=True)
class Pair:
    """`draft`: a model, None for none, or DEFAULT; `engine`: a registry name (None: the main
    model's own format decides); `options`: how both load (`LoadOptions.for_main` and
    `for_draft`; None: as the EngineManager loads by default)."""

    main: ModelReference
    draft: ModelReference | Remembered | None = DEFAULT
    engine: str | None = None
    options: LoadOptions | None = None
