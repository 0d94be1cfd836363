// The token tooltip and its round's outline, shown on real hover only: text growing under a
// still mouse moves spans beneath it (and browsers then send mouseover, even synthetic mousemove)
// without the reader asking for anything, so only a move to new coordinates counts.

import { fillTooltip, tokenOfSpan } from "./transcript.js";

const TOKEN = ".specdec-draft, .specdec-main";

/** Outline every token of `span`'s round in its reply; returns the outlined spans. */
export function outlineRound(span) {
  const reply = span.closest(".specdec-reply");
  if (!reply) return [];
  const spans = [...reply.querySelectorAll(`[data-round="${span.dataset.round}"]`)].filter((node) => node.matches(TOKEN));
  for (const node of spans) node.classList.add("specdec-round-hover");
  return spans;
}

/**
 * Show `tip` (inside `root`) for the token under the pointer in `container`, and outline its
 * round, when the pointer moves; hide both when it leaves. Listeners end with `signal`.
 */
export function attachTokenHover(container, tip, root, signal) {
  let last = null;
  let outlined = [];
  const clear = () => {
    for (const node of outlined) node.classList.remove("specdec-round-hover");
    outlined = [];
    tip.hidden = true;
  };
  const onMove = (event) => {
    if (last && last.x === event.clientX && last.y === event.clientY) return;
    last = { x: event.clientX, y: event.clientY };
    const span = event.target.closest?.(TOKEN);
    const token = span && tokenOfSpan(span);
    clear();
    if (!token) return;
    fillTooltip(tip, token);
    tip.hidden = false;
    outlined = outlineRound(span);
    const box = span.getBoundingClientRect();
    const frame = root.getBoundingClientRect();
    tip.style.left = `${box.left - frame.left}px`;
    tip.style.top = `${box.bottom - frame.top + 4}px`;
  };
  container.addEventListener("mousemove", onMove, { signal });
  container.addEventListener("mouseleave", clear, { signal });
}
