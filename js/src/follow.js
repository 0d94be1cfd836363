// Following a scrolling box's end while text streams into it, the way a terminal does:
// only while the reader is at the end. Scrolling up stops the follow; scrolling back to
// the end resumes it.

/** How far from the end (px) still counts as "at the end": a line's rounding, not a page. */
export const END_SLACK = 24;

/** Whether a box scrolled to `scrollTop` shows its end. */
export function atEnd({ scrollTop, clientHeight, scrollHeight }, slack = END_SLACK) {
  return scrollHeight - scrollTop - clientHeight <= slack;
}

/** Keeps `box` at its end as content grows, while the reader keeps it there. A wheel turned
 * upwards stops the follow at once, before the scroll it causes lands: text arriving in
 * between must not pull the reader back down. */
export class FollowScroll {
  constructor(box, signal) {
    this.box = box;
    this.following = true;
    box.addEventListener("scroll", () => (this.following = atEnd(box)), { signal });
    box.addEventListener("wheel", (event) => event.deltaY < 0 && (this.following = false), { signal, passive: true });
  }

  /** Call after content changed: scrolls to the end if the reader is following. */
  contentChanged() {
    if (this.following) this.box.scrollTop = this.box.scrollHeight;
  }
}
