// Per sentence, for proofing: a "needs review" flag, and the take a re-synthesis replaced, to
// listen to and to pick back.

import { getBlob, request } from "./api.js";
import { button, formatLength, h, say, uid } from "./dom.js";

/** Changes whenever the sentence's audio does (a new attempt, or a swap of takes). */
export function takeKey(segment) {
  return `${segment.attempts}.${segment.swaps || 0}`;
}

/**
 * The proofing controls of one sentence row (chapter.js's SentenceRow: `segment`, `label`,
 * `update(changes)`, `chapter`). Returns {flag, toggle, panel, render()}.
 */
export function proofingControls(row) {
  const panelId = uid("review");
  const flag = h("span", { class: "review-flag", hidden: true }, "Needs review");
  const toggle = button("Review", () => setOpen(panel.hidden), "btn btn-small btn-quiet");
  toggle.setAttribute("aria-controls", panelId);
  const message = h("p", { class: "status-line", role: "status" });
  const checkId = uid("needs-review");
  const check = h("input", { id: checkId, type: "checkbox" });
  const previousNote = h("p", { class: "muted" });
  const playPrevious = button("Play the previous take", () => listen(), "btn btn-small");
  const pickPrevious = button("Keep the previous take", () => pick(), "btn btn-small");
  const previous = h("div", { class: "toolbar-group" }, playPrevious, pickPrevious);
  const audio = h("audio", { controls: true, hidden: true });
  const panel = h(
    "div",
    { id: panelId, class: "review-panel", hidden: true },
    h("label", { class: "check", for: checkId }, check, "Needs review"),
    previousNote,
    previous,
    audio,
    message,
  );

  function setOpen(open) {
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (!open) audio.pause();
  }

  check.addEventListener("change", async () => {
    const wanted = check.checked;
    try {
      const response = await request(`v1/segments/${row.segment.id}`, {
        method: "PATCH",
        json: { needs_review: wanted },
      });
      row.update({ needs_review: (await response.json()).needs_review });
      say(message, wanted ? "Flagged for review." : "Flag cleared.", "ok");
    } catch (error) {
      check.checked = !wanted;
      say(message, `Could not change the flag: ${error.message}`, "error");
    }
    row.chapter.reviewChanged?.();
  });

  async function listen() {
    try {
      const { blob } = await getBlob(
        `v1/segments/${row.segment.id}/audio?format=wav&take=previous&v=${takeKey(row.segment)}`,
      );
      if (audio.src) URL.revokeObjectURL(audio.src);
      audio.src = URL.createObjectURL(blob);
      audio.hidden = false;
      row.chapter.player.stopAudio(); // one sound at a time
      audio.play().catch(() => {});
    } catch (error) {
      say(message, `Could not play the previous take: ${error.message}`, "error");
    }
  }

  async function pick() {
    audio.pause();
    try {
      const response = await request(`v1/segments/${row.segment.id}/takes/swap`, {
        method: "POST",
      });
      const segment = await response.json();
      // The audio changed without a new attempt: a new cache key for the player.
      row.update({ ...segment, swaps: (row.segment.swaps || 0) + 1 });
      say(message, "The previous take is the current one now (the other one is kept).", "ok");
    } catch (error) {
      say(message, `Could not switch takes: ${error.message}`, "error");
    }
  }

  function render() {
    const s = row.segment;
    flag.hidden = !s.needs_review;
    check.checked = Boolean(s.needs_review);
    row.element?.classList.toggle("seg-review", Boolean(s.needs_review));
    toggle.setAttribute("aria-label", `Review ${row.label}`);
    toggle.setAttribute("aria-expanded", String(!panel.hidden));
    const has = s.previous_duration_ms !== null && s.previous_duration_ms !== undefined;
    previous.hidden = !has || s.status === "queued";
    previousNote.textContent = has
      ? `A previous take is kept (${formatLength(s.previous_duration_ms)}); compare and keep the better one.`
      : "There is no previous take: after a re-synthesis the one it replaced is kept here.";
    playPrevious.setAttribute("aria-label", `Play the previous take of ${row.label}`);
    pickPrevious.setAttribute("aria-label", `Keep the previous take of ${row.label}`);
    audio.setAttribute("aria-label", `Previous take of ${row.label}`);
  }

  return { flag, toggle, panel, render };
}
