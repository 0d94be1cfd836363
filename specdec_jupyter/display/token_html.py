"""One token as static HTML: the widgets' span (js/src/provenance.js) with inline styles, since
GitHub and nbconvert keep no style sheet, and its tooltip as a `title`."""

from __future__ import annotations

import html

from ..decoding.events import TokenEvent

GREEN = "var(--specdec-green, 34, 197, 94)"  # js/src/provenance.js's, written the same way


def draft_shade(event: TokenEvent) -> float:
    """Opacity of the green behind an accepted draft token: the main model's probability of
    it (0.15 for p = 0 to 0.65 for p = 1), else min(1, p/q), else certain."""
    p = event.p_main if event.p_main is not None else event.acceptance
    return 0.15 + 0.5 * (1.0 if p is None else max(0.0, min(1.0, p)))


KIND_STYLES = {
    "correction": "text-decoration:underline wavy rgba(234,88,12,0.85);text-underline-offset:3px",
    "bonus": "text-decoration:underline dotted rgba(34,197,94,0.9);text-underline-offset:3px",
}


def token_tooltip(event: TokenEvent) -> str:
    parts = [f"{event.text!r}", f"id {event.token_id}", event.kind or event.source]
    parts.append(f"round {event.round}")
    for label, value in (("p", event.p_main), ("q", event.q_draft), ("accept", event.acceptance)):
        if value is not None:
            parts.append(f"{label}={value:.3f}")
    if event.rejected:
        parts.append(f"replaced draft {''.join(event.rejected)!r}")
    if event.drafted_as:
        parts.append(f"draft's own tokens {' '.join(repr(t) for t in event.drafted_as)}")
    return " · ".join(parts)


def token_span(event: TokenEvent, text: str, *, segment: str = "") -> str:
    """A span for (part of) a token's text, with the widget's class, shade and a tooltip."""
    styles = [segment] if segment else []
    if event.source == "draft":
        styles.append(f"background: rgba({GREEN}, {draft_shade(event):.2f});border-radius:2px")
    kind = event.kind or ("accepted" if event.source == "draft" else "plain")
    if kind in KIND_STYLES and not segment:
        styles.append(KIND_STYLES[kind])
    elif kind == "correction":
        styles.append("background:rgba(234,88,12,0.6)")
    source_class = "specdec-draft" if event.source == "draft" else "specdec-main"
    style = f' style="{";".join(styles)}"' if styles else ""
    return (
        f'<span class="{source_class} specdec-kind-{kind}" data-round="{event.round}"{style} '
        f'title="{html.escape(token_tooltip(event))}">{html.escape(text)}</span>'
    )
