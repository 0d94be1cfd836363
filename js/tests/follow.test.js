import { describe, expect, it } from "vitest";
import { atEnd, END_SLACK, FollowScroll } from "../src/follow.js";

/** A scrolling box as the follower sees it: its scroll position and sizes, and scroll events. */
function box(scrollTop, clientHeight = 100, scrollHeight = 1000) {
  return Object.assign(new EventTarget(), { scrollTop, clientHeight, scrollHeight });
}
const scrollTo = (b, top) => {
  b.scrollTop = top;
  b.dispatchEvent(new Event("scroll"));
};

describe("following the end of a stream", () => {
  it("counts a box as at its end within the slack only", () => {
    expect(atEnd(box(900))).toBe(true);
    expect(atEnd(box(900 - END_SLACK))).toBe(true);
    expect(atEnd(box(900 - END_SLACK - 1))).toBe(false);
    expect(atEnd(box(0, 100, 50))).toBe(true); // content shorter than the box
  });

  it("follows while the reader is at the end, stops when they scroll up, resumes at the end", () => {
    const b = box(900);
    const follow = new FollowScroll(b);
    b.scrollHeight = 1200; // text grew
    follow.contentChanged();
    expect(b.scrollTop).toBe(1200);
    scrollTo(b, 400); // the reader scrolls up to read
    b.scrollHeight = 1500;
    follow.contentChanged();
    expect(b.scrollTop).toBe(400); // left where they are
    scrollTo(b, 1400); // back at the end
    b.scrollHeight = 1800;
    follow.contentChanged();
    expect(b.scrollTop).toBe(1800);
  });

  it("stops following as soon as the wheel turns upwards, before the scroll lands", () => {
    const b = box(900);
    const follow = new FollowScroll(b);
    b.dispatchEvent(Object.assign(new Event("wheel"), { deltaY: 40 })); // downwards: still following
    expect(follow.following).toBe(true);
    b.dispatchEvent(Object.assign(new Event("wheel"), { deltaY: -40 }));
    b.scrollHeight = 1300; // text arrives before the scroll event
    follow.contentChanged();
    expect(b.scrollTop).toBe(900);
  });

  it("stops listening when its signal aborts", () => {
    const b = box(900);
    const controller = new AbortController();
    const follow = new FollowScroll(b, controller.signal);
    controller.abort();
    scrollTo(b, 0);
    expect(follow.following).toBe(true);
  });
});
