"""One line per completion request, as LM Studio's server window shows them: which pair ran,
how many tokens at what speed, how many drafts the main model accepted, and how it ended.
`serve` prints them; a server in a notebook or a test leaves them to `logging`."""

from __future__ import annotations

import logging
import sys

from ..decoding.events import GenerationStats

LOG = logging.getLogger("specdec_jupyter.server")


def request_line(
    what: str,
    model: str | None,
    draft: str | None,
    stats: GenerationStats | None,
    status: int,
    ending: str | None = None,
) -> str:
    """`POST /v1/chat/completions · model M · draft D · 120 tokens · 23.4 tok/s · accepted
    71/72 drafted · 200 (eosFound)`, the models named as the client named them (`draft`, else
    the run's own name for what drafted); a request that failed says its status and why."""
    parts = [what]
    if model:
        parts.append(f"model {model}")
    if stats is not None:
        parts += [
            f"draft {draft or stats.draft_model or 'none'}",
            f"{stats.predicted_tokens_count} tokens",
            f"{stats.tokens_per_second:.1f} tok/s",
            f"accepted {stats.accepted_draft_tokens_count}/"
            f"{stats.total_draft_tokens_count} drafted",
        ]
        ending = ending or stats.stop_reason
    parts.append(f"{status}" + (f" ({ending})" if ending else ""))
    return " · ".join(parts)


def print_requests() -> None:
    """Request lines on stdout, timed, for `serve` in a terminal."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
