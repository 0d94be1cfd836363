"""Plain-text reports of discovered models and draft verdicts, for the terminal.

Every model the user has appears somewhere, and every one that cannot be used (or
cannot draft) carries its reason: an empty list with no word of why is what
LM Studio's users complain about most.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

from ..decoding.cost_curve import plausible
from ..decoding.cost_memory import MAX_AGE, SAMPLES_KEPT, CostStore, recent_median
from ..engines.registry import KIND_OF_FORMAT
from ..models.discovery import DiscoveredModel, ModelRoot
from ..models.drafts.guidance import in_words, no_draft_guidance
from ..models.drafts.verdicts import DraftVerdict
from ..models.model_info import ModelInfo
from ..models.names import file_size, short_name


def models_report(models: Sequence[DiscoveredModel], roots: Sequence[ModelRoot]) -> str:
    usable = [m for m in models if m.info.usable]
    unusable = [m for m in models if not m.info.usable]
    rows = [
        ("NAME", "ENGINE", "SIZE", "PARAMS", "QUANT", "VOCABULARY", "CONTEXT", "SOURCE", "FILE")
    ]
    rows += [
        (
            short_name(m.path),
            KIND_OF_FORMAT[m.info.format],
            file_size(m.info.size_bytes),
            m.info.size_label or "?",
            m.info.quantization or "?",
            _vocabulary(m.info),
            str(m.info.context_length or "?"),
            m.source,
            m.name,
        )
        for m in usable
    ]
    lines = _table(rows) if usable else ["no usable models found"]
    if unusable:
        lines += ["", f"unusable ({len(unusable)}):"]
        lines += [f"  {m.name} ({m.source}): {m.info.problem}" for m in unusable]
    lines += ["", _searched(roots)]
    return "\n".join(lines)


def compat_report(
    main_name: str,
    main: ModelInfo,
    verdicts: Sequence[tuple[str, DraftVerdict]],
    found_elsewhere: Sequence[str] = (),
) -> str:
    """The verdict on each candidate; with none compatible, what would fit instead (models
    found beyond the candidates named, `found_elsewhere`; a catalog draft; lookup)."""
    engine = KIND_OF_FORMAT[main.format]
    lines = [f"main: {main_name} ({engine}, {_vocabulary(main)}, {main.size_label})"]
    same = [(name, v) for name, v in verdicts if v.compatible and not v.text_level]
    text = [(name, v) for name, v in verdicts if v.text_level]
    unusable = [(name, v) for name, v in verdicts if not v.compatible]
    lines.append(f"same vocabulary, drafting tokens, for {engine} ({len(same)}):")
    for name, verdict in same:
        lines.append(f"  {name}")
        lines += [f"    warning: {warning}" for warning in verdict.warnings]
    if not same:
        guidance = no_draft_guidance(main_name, main, len(verdicts), found_elsewhere)
        lines += textwrap.wrap(guidance, 96, initial_indent="  ", subsequent_indent="  ")
    if text:
        lines.append(f"another vocabulary, drafting text ({len(text)}):")
        for name, verdict in text:
            note, *warnings = verdict.warnings
            lines.append(f"  {name}: {note}")
            lines += [f"    warning: {warning}" for warning in warnings]
    if unusable:
        lines.append(f"unusable ({len(unusable)}):")
        lines += [f"  {name}: {in_words(v.reasons)}" for name, v in unusable]
    return "\n".join(lines)


def costs_report(store: CostStore) -> str:
    """What `auto` remembers of call costs, per model file and backend: the cost of a main
    model's call by size (a size off the machine's curve marked, as auto drops it) and of a
    drafted token, each the median of its recent timings."""
    now = time.time()
    lines = [
        f"call costs in {store.path} (each the median of its last {SAMPLES_KEPT} timings "
        f"within {MAX_AGE / 86400:.0f} days):"
    ]
    for entry in store.entries().values():
        name = Path(str(entry.get("model", "?"))).name
        lines.append(f"  {name} ({entry.get('backend', '?')})")
        costs = {
            int(n): m
            for n, samples in entry.get("calls", {}).items()
            if (m := recent_median(samples, now)) is not None
        }
        kept = plausible(costs)
        for n, seconds in sorted(costs.items()):
            note = "" if n in kept else "  (off the curve of the others: not used)"
            tokens = "1 token" if n == 1 else f"{n} tokens"
            lines.append(f"    a call on {tokens}: {_ms(seconds)}{note}")
        draft = recent_median(entry.get("draft_token", []), now)
        if draft is not None:
            lines.append(f"    a drafted token: {_ms(draft)}")
    if len(lines) == 1:
        lines.append("  none: auto measures them as it generates")
    else:
        lines.append("forget them with: specdec-jupyter costs --reset")
    return "\n".join(lines)


def costs_answer(store: CostStore, reset: bool) -> str:
    """What `costs` (the CLI's and the magic's) prints: the report, or what `--reset` forgot."""
    if not reset:
        return costs_report(store)
    if store.reset():
        return f"forgot the call costs in {store.path}"
    return "no call costs to forget"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.{1 if seconds < 0.01 else 0}f} ms"


def _searched(roots: Sequence[ModelRoot]) -> str:
    present = [str(r.path) for r in roots if r.path.exists()]
    missing = [str(r.path) for r in roots if not r.path.exists()]
    text = f"searched: {', '.join(present) or 'nothing (no model folder exists)'}"
    return text + (f" (not present: {', '.join(missing)})" if missing else "")


def _vocabulary(info: ModelInfo) -> str:
    return f"{info.vocab_type or '?'} {info.vocab_size or '?'}"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
