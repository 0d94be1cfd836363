// Which token wrote each character of a rendered reply.
//
// A reply's source is its tokens' texts joined. Markdown rendering drops markup (`**`, list
// markers, fence lines, `$`) and keeps the rest in order, so the text of the rendered page is a
// subsequence of the source: walking both in step finds, for every rendered character, the source
// character it came from, and through the tokens' start offsets the token that wrote it. Offsets
// are UTF-16 code units, as JS strings count; a token's text always holds whole code points (the
// decoder waits for a character's last byte), so a surrogate pair never straddles two tokens.

/** How far ahead a rendered character may be found: past markup such as a link's URL, not past a block. */
export const MAX_SKIP = 512;

/** The source offset where each token's text starts. */
export function tokenStarts(tokens) {
  const starts = new Array(tokens.length);
  let offset = 0;
  tokens.forEach((token, i) => {
    starts[i] = offset;
    offset += token.text.length;
  });
  return starts;
}

/** The index of the token that wrote source offset `pos` (tokens with empty text own nothing), or -1. */
export function tokenAt(starts, pos) {
  let low = 0;
  let high = starts.length - 1;
  let found = -1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    if (starts[mid] <= pos) {
      found = mid;
      low = mid + 1;
    } else {
      high = mid - 1;
    }
  }
  return found;
}

/**
 * The source offset of each character of `text`, a piece of rendered output, searching `source`
 * from `cursor` up to `end`. A character not found within MAX_SKIP (an entity the renderer
 * decoded, say) gets -1 and leaves the cursor where it was, so one odd character cannot derail
 * the rest. Returns the offsets and the cursor after the last match.
 */
export function alignText(source, cursor, text, end = source.length) {
  const offsets = new Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const found = source.indexOf(text[i], cursor);
    if (found === -1 || found >= end || found - cursor > MAX_SKIP) {
      offsets[i] = -1;
    } else {
      offsets[i] = found;
      cursor = found + 1;
    }
  }
  return { offsets, cursor };
}

/**
 * Split rendered text into runs of one token each: [{text, token}], where `token` is an index
 * into the tokens. A character whose source was not found joins its neighbour's run, so every
 * visible character has a token to show on hover.
 */
export function tokenRuns(text, offsets, starts) {
  const owners = offsets.map((offset) => (offset < 0 ? -1 : tokenAt(starts, offset)));
  const firstKnown = owners.find((owner) => owner >= 0) ?? -1;
  const runs = [];
  let previous = firstKnown;
  for (let i = 0; i < text.length; i++) {
    const owner = owners[i] >= 0 ? owners[i] : previous;
    previous = owner;
    const last = runs[runs.length - 1];
    if (last && last.token === owner) last.text += text[i];
    else runs.push({ text: text[i], token: owner });
  }
  return runs;
}
