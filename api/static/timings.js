// Follow a chapter's audio sentence by sentence: the sentence being played is highlighted (and
// marked aria-current), and clicking a sentence's text seeks the audio to it. The times are the
// voice's own (GET v1/chapters/{id}/timings: one sentence per segment, on the chapter file's
// time line, with the segment ids in `segments`).

import { getJSON } from "./api.js";

const STYLE_ID = "voxmill-timings-style";

// The page's Content-Security-Policy allows only the app's own style sheets: link ours once.
function ensureStyle() {
  if (document.getElementById(STYLE_ID)) return;
  const link = document.createElement("link");
  link.id = STYLE_ID;
  link.rel = "stylesheet";
  link.href = new URL("timings.css", import.meta.url).href;
  document.head.append(link);
}

/** The index of the last sentence starting at or before `ms` (-1 before the first). */
export function sentenceAt(starts, ms) {
  let lo = 0;
  let hi = starts.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid] <= ms) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

/**
 * Highlight the sentence `audio` is playing among the rows under `root` (`.seg[data-segment-id]`)
 * and let a click on a sentence's text seek to it. Returns a function that stops following.
 * Without timings (an older recording) it does nothing.
 */
export async function followSentences(audio, chapterId, root) {
  let timed;
  try {
    timed = await getJSON(`v1/chapters/${chapterId}/timings`);
  } catch {
    return () => {};
  }
  ensureStyle();
  const sentences = timed.sentences || [];
  const ids = (timed.segments || []).map(String);
  const starts = sentences.map((s) => s.start_ms);
  const rowOf = (id) => root.querySelector(`.seg[data-segment-id="${CSS.escape(id)}"]`);
  let current = null;

  const mark = () => {
    const index = sentenceAt(starts, audio.currentTime * 1000);
    const inside = index >= 0 && audio.currentTime * 1000 < sentences[index].end_ms + 300;
    const row = inside ? rowOf(ids[index]) : null;
    if (row === current) return;
    if (current) current.removeAttribute("aria-current");
    current = row;
    if (row) {
      row.setAttribute("aria-current", "true");
      if (!audio.paused) row.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }
  };

  const seek = (event) => {
    if (!audio.isConnected) return;
    const text = event.target.closest(".seg-text");
    const row = text && text.closest(".seg[data-segment-id]");
    const index = row ? ids.indexOf(row.dataset.segmentId) : -1;
    if (index < 0) return;
    audio.currentTime = sentences[index].start_ms / 1000;
    audio.play().catch(() => {});
    mark();
  };

  for (const id of ids) rowOf(id)?.setAttribute("data-seekable", "");
  audio.addEventListener("timeupdate", mark);
  audio.addEventListener("seeked", mark);
  root.addEventListener("click", seek);
  return () => {
    audio.removeEventListener("timeupdate", mark);
    audio.removeEventListener("seeked", mark);
    root.removeEventListener("click", seek);
    for (const id of ids) {
      rowOf(id)?.removeAttribute("data-seekable");
      rowOf(id)?.removeAttribute("aria-current");
    }
  };
}
