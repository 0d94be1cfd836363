"""Plain-text reports of discovered models and draft verdicts, for the terminal.

Every model the user has appears somewhere, and every one that cannot be used (or
cannot draft) carries its reason: an empty list with no word of why is what
LM Studio's users complain about most.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engines.registry import KIND_OF_FORMAT
from ..models.discovery import DiscoveredModel, ModelRoot
from ..models.drafts.verdicts import DraftVerdict
from ..models.model_info import ModelInfo
from ..models.names import file_size


def models_report(models: Sequence[DiscoveredModel], roots: Sequence[ModelRoot]) -> str:
    usable = [m for m in models if m.info.usable]
    unusable = [m for m in models if not m.info.usable]
    rows = [("NAME", "ENGINE", "SIZE", "PARAMS", "QUANT", "VOCABULARY", "CONTEXT", "SOURCE")]
    rows += [
        (
            m.name,
            KIND_OF_FORMAT[m.info.format],
            file_size(m.info.size_bytes),
            m.info.size_label or "?",
            m.info.quantization or "?",
            _vocabulary(m.info),
            str(m.info.context_length or "?"),
            m.source,
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
    main_name: str, main: ModelInfo, verdicts: Sequence[tuple[str, DraftVerdict]]
) -> str:
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
        lines.append("  none: no other model shares this model's vocabulary")
    if text:
        lines.append(f"another vocabulary, drafting text ({len(text)}):")
        for name, verdict in text:
            note, *warnings = verdict.warnings
            lines.append(f"  {name}: {note}")
            lines += [f"    warning: {warning}" for warning in warnings]
    if unusable:
        lines.append(f"unusable ({len(unusable)}):")
        lines += [f"  {name}: {'; '.join(v.reasons)}" for name, v in unusable]
    return "\n".join(lines)


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
