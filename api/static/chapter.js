// One chapter on the project page: its paragraphs and sentences with their status, and the
// listen / fix / download controls. Rows are updated in place from live events, so an open
// editor or a playing sentence survives every update.

import { getJSON, request } from "./api.js";
import { button, formatLength, h, liveRegion, say, uid } from "./dom.js";
import { spokenControls } from "./lexicon.js";
import { download, formatPicker } from "./media.js";
import { proofingControls } from "./proofing.js";

const STATUS_LABEL = {
  pending: "Not converted",
  queued: "In progress",
  done: "Done",
  failed: "Failed",
};

function countsText(counts) {
  if (!counts.total) return "empty";
  const parts = [`${counts.done} of ${counts.total} done`];
  if (counts.failed) parts.push(`${counts.failed} failed`);
  if (counts.queued) parts.push(`${counts.queued} in progress`);
  return parts.join(" · ");
}

function sameCounts(a, b) {
  return ["pending", "queued", "done", "failed", "total"].every((k) => (a[k] || 0) === (b[k] || 0));
}

/** One sentence row. */
class SentenceRow {
  constructor(segment, number, chapter) {
    this.segment = segment;
    this.number = number;
    this.chapter = chapter;
    this.badge = h("span", { class: "badge" });
    this.text = h("p", { class: "seg-text" });
    this.length = h("span", { class: "seg-length muted" });
    this.playButton = button("Play", () => this.play(), "btn btn-small");
    this.fromHereButton = button("Play from here", () => this.playFromHere(), "btn btn-small");
    this.editButton = button("Edit", () => this.toggleEditor(), "btn btn-small btn-quiet");
    this.retryButton = button("Retry", () => this.retry(), "btn btn-small btn-warn");
    this.error = h("p", { class: "seg-error" });
    this.message = liveRegion("seg-msg");
    this.message.hidden = true;
    this.anchor = h("div", { class: "seg-anchor", hidden: true }); // editors open above it
    this.editor = null;
    this.settledWaiters = [];
    this.spoken = spokenControls(this);
    this.proofing = proofingControls(this);
    this.element = h(
      "li",
      { class: "seg", dataset: { segmentId: String(segment.id) } },
      h("div", { class: "seg-head" }, this.badge, this.proofing.flag, this.text, this.length),
      h(
        "div",
        { class: "seg-actions" },
        this.playButton,
        this.fromHereButton,
        this.editButton,
        this.spoken.toggle,
        this.proofing.toggle,
        this.retryButton,
      ),
      this.error,
      this.message,
      this.spoken.panel,
      this.proofing.panel,
      this.anchor,
    );
    this.render();
  }

  /** "sentence 3 of “The harbour”": unique on the page, in the page's words. */
  get label() {
    return `sentence ${this.number} of “${this.chapter.title.textContent}”`;
  }

  /** Resolves once the sentence is no longer being synthesized (at once if it is not). */
  whenSettled() {
    if (this.segment.status !== "queued") return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  setPlaying(on) {
    this.element.classList.toggle("seg-playing", on);
    if (on) {
      this.element.setAttribute("aria-current", "true");
      this.chapter.ensureOpen();
      const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      this.element.scrollIntoView({ block: "center", behavior: smooth ? "smooth" : "auto" });
    } else {
      this.element.removeAttribute("aria-current");
    }
  }

  render() {
    const s = this.segment;
    this.element.className = `seg seg-${s.status}`;
    this.element.dataset.status = s.status;
    this.badge.className = `badge badge-${s.status}`;
    this.badge.textContent = STATUS_LABEL[s.status] || s.status;
    this.text.textContent = s.text;
    const hasAudio = s.status === "done" && s.duration_ms;
    this.length.textContent = hasAudio ? formatLength(s.duration_ms) : "";
    const label = this.label;
    this.playButton.hidden = s.status !== "done";
    this.playButton.setAttribute("aria-label", `Play ${label}`);
    this.fromHereButton.setAttribute("aria-label", `Play from ${label} on`);
    this.editButton.setAttribute("aria-label", `Edit ${label}`);
    this.editButton.setAttribute("aria-expanded", String(Boolean(this.editor)));
    this.editButton.disabled = s.status === "queued";
    this.retryButton.hidden = s.status !== "failed";
    this.retryButton.setAttribute("aria-label", `Retry ${label}`);
    const failed = s.status === "failed";
    this.error.hidden = !failed;
    this.error.textContent = failed ? `Failed: ${s.last_error || "no reason given"}` : "";
    this.spoken.render();
    this.proofing.render();
  }

  update(changes) {
    Object.assign(this.segment, changes);
    this.render();
    if (this.segment.status !== "queued" && this.settledWaiters.length) {
      const waiters = this.settledWaiters;
      this.settledWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  flash(message, kind = "") {
    say(this.message, message, kind);
  }

  play() {
    this.flash("");
    this.chapter.player.play([this]);
  }

  playFromHere() {
    this.flash("");
    this.chapter.playFrom(this);
  }

  toggleEditor() {
    if (this.editor) {
      this.editor.remove();
      this.editor = null;
      this.render();
      this.editButton.focus();
      return;
    }
    const id = uid("fix");
    const textarea = h("textarea", { id, rows: "2", maxlength: "2000", text: this.segment.text });
    const problem = h("p", { class: "error", role: "alert", hidden: true });
    const save = h(
      "button",
      { type: "submit", class: "btn btn-small btn-primary" },
      "Re-synthesize",
    );
    const cancel = button("Cancel", () => this.toggleEditor(), "btn btn-small btn-quiet");
    const form = h(
      "form",
      { class: "seg-editor", novalidate: true },
      h("label", { for: id }, `Corrected text for ${this.label}`),
      textarea,
      problem,
      h("div", { class: "actions" }, save, cancel),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = textarea.value.trim();
      if (!text) {
        say(problem, "Type the corrected sentence, or cancel.", "error");
        textarea.focus();
        return;
      }
      save.disabled = true;
      try {
        await this.resynthesize(text);
        this.toggleEditor();
        this.flash("Sent for synthesis; it plays again once done.");
      } catch (error) {
        say(problem, error.message, "error");
      } finally {
        save.disabled = false;
      }
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.toggleEditor();
    });
    this.editor = form;
    this.anchor.before(form);
    this.render();
    textarea.focus();
  }

  async resynthesize(text) {
    const options = { method: "POST" };
    if (text !== undefined) options.json = { text };
    const response = await request(`v1/segments/${this.segment.id}/resynthesize`, options);
    const body = await response.json();
    this.update(body.segment);
    this.chapter.segmentChanged(body.conversion);
  }

  async retry() {
    this.retryButton.disabled = true;
    this.flash("");
    try {
      await this.resynthesize();
    } catch (error) {
      this.flash(`Could not retry: ${error.message}`, "error");
    } finally {
      this.retryButton.disabled = false;
    }
  }
}

/** A chapter section; `onConversion(conversionOut)` hears about re-syntheses started here. */
export class ChapterView {
  constructor(summary, { open, onConversion, player, playFrom, onReview }) {
    this.summary = summary;
    this.reviewChanged = onReview;
    this.onConversion = onConversion;
    this.player = player;
    this.playFromRow = playFrom;
    this.rows = new Map();
    this.order = [];
    this.loaded = false;
    this.loading = null;
    this.reloadAfter = false;

    const headingId = uid("chapter");
    const formatId = uid("chapter-format");
    this.counts = h("span", { class: "chapter-counts muted" });
    this.title = h("h2", { id: headingId, class: "chapter-title" });
    this.list = h("div", { class: "blocks" });
    this.status = liveRegion();
    this.status.hidden = true;
    this.playButton = button("Play chapter", () => this.play());
    const picker = formatPicker(formatId);
    this.format = picker.select;
    this.downloadButton = button("Download chapter", () => this.download());
    this.details = h(
      "details",
      { open },
      h("summary", {}, this.title, this.counts),
      h(
        "div",
        { class: "chapter-body" },
        h(
          "div",
          { class: "toolbar" },
          this.playButton,
          h("div", { class: "toolbar-group" }, picker.field, this.downloadButton),
        ),
        this.status,
        this.list,
      ),
    );
    this.details.addEventListener("toggle", () => {
      if (this.details.open) this.load();
    });
    this.element = h(
      "section",
      {
        class: "chapter card",
        "aria-labelledby": headingId,
        dataset: { chapterId: String(summary.id) },
      },
      this.details,
    );
    this.renderSummary();
    if (open) this.load();
  }

  get id() {
    return this.summary.id;
  }

  /** The chapter's sentence rows in reading order (loads them first if needed). */
  async sentenceRows() {
    if (!this.loaded) await this.load();
    return this.order;
  }

  ensureOpen() {
    if (!this.details.open) this.details.open = true;
  }

  /** Play from `row` to the end of the project. */
  playFrom(row) {
    this.playFromRow(row);
  }

  renderSummary() {
    const s = this.summary;
    this.title.textContent = s.title || `Chapter ${s.position + 1}`;
    this.counts.textContent = countsText(s.counts);
    const label = this.title.textContent;
    this.playButton.setAttribute("aria-label", `Play chapter: ${label}`);
    for (const row of this.rows.values()) row.render(); // their names carry the chapter title
    this.downloadButton.setAttribute("aria-label", `Download chapter: ${label}`);
  }

  /** New counts from the project; reload the sentences if they no longer add up. */
  update(summary) {
    this.summary = summary;
    this.renderSummary();
    this.clearStaleNotice(summary.counts);
    if (this.loaded && !sameCounts(this.rowCounts(), summary.counts)) this.load();
  }

  rowCounts() {
    const counts = { pending: 0, queued: 0, done: 0, failed: 0, total: 0 };
    for (const row of this.rows.values()) {
      counts[row.segment.status] += 1;
      counts.total += 1;
    }
    return counts;
  }

  /** Fetch the sentences (one request at a time; a call during a load runs once more after). */
  load() {
    if (this.loading) {
      this.reloadAfter = true;
      return this.loading;
    }
    this.loading = (async () => {
      try {
        do {
          this.reloadAfter = false;
          const detail = await getJSON(`v1/chapters/${this.id}`);
          this.renderBlocks(detail);
        } while (this.reloadAfter);
      } catch (error) {
        if (!this.loaded) this.list.replaceChildren();
        say(this.status, `Could not load this chapter: ${error.message}`, "error");
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  }

  renderBlocks(detail) {
    const seen = new Set();
    const order = [];
    let number = 0;
    const blocks = detail.blocks.map((block) => {
      const items = block.segments.map((segment) => {
        number += 1;
        seen.add(segment.id);
        let row = this.rows.get(segment.id);
        if (row) {
          row.number = number;
          row.update(segment);
        } else {
          row = new SentenceRow(segment, number, this);
          this.rows.set(segment.id, row);
        }
        order.push(row);
        return row.element;
      });
      const label = `Paragraph ${block.position + 1}`;
      return h("ol", { class: "paragraph", "aria-label": label }, items);
    });
    for (const id of [...this.rows.keys()]) if (!seen.has(id)) this.rows.delete(id);
    this.order = order;
    if (!blocks.length) blocks.push(h("p", { class: "muted" }, "This chapter has no sentences."));
    this.list.replaceChildren(...blocks);
    this.loaded = true;
  }

  /** A conversion started: every sentence without audio, or failed, is now queued. */
  markQueued(everything = false) {
    const wanted = everything ? ["pending", "failed", "done"] : ["pending", "failed"];
    for (const row of this.rows.values()) {
      if (wanted.includes(row.segment.status)) {
        row.update({ status: "queued", attempts: (row.segment.attempts || 0) + 1 });
      }
    }
  }

  /** The conversion was paused or cancelled: its sentences in progress wait again. */
  markHeld() {
    for (const row of this.rows.values()) {
      if (row.segment.status === "queued") row.update({ status: "pending" });
    }
    if (this.loaded) this.counts.textContent = countsText(this.rowCounts());
  }

  /** A live `segment` event for this chapter. */
  applyEvent(data) {
    const row = this.rows.get(data.segment_id);
    if (!row) return;
    const changes = { status: data.status };
    if ("duration_ms" in data && data.duration_ms !== null) changes.duration_ms = data.duration_ms;
    if ("error" in data) changes.last_error = data.error;
    if ("text" in data) changes.text = data.text;
    if ("spoken_text" in data) changes.spoken_text = data.spoken_text;
    // New audio over old: the replaced take is kept (the server says how long it is on reload).
    if (data.status === "done" && row.segment.status === "queued" && row.segment.duration_ms) {
      changes.previous_duration_ms = row.segment.duration_ms;
    }
    if (data.status === "queued") changes.attempts = (row.segment.attempts || 0) + 1;
    // A queued event from this page's own re-synthesize was already applied from its response.
    if (data.status === "queued" && row.segment.status === "queued") delete changes.attempts;
    row.update(changes);
    if (data.status === "done" || data.status === "failed") row.flash("");
    // Counts follow the rows at once; the debounced refresh from the server confirms them.
    if (this.loaded) {
      this.counts.textContent = countsText(this.rowCounts());
      this.clearStaleNotice(this.rowCounts());
    }
  }

  /** A re-synthesis was started from a row of this chapter. */
  segmentChanged(conversion) {
    if (conversion) this.onConversion(conversion);
  }

  /** The chapter's audio as it is now: changes whenever a sentence is synthesized again. */
  version() {
    let sum = 0;
    for (const row of this.rows.values()) sum += row.segment.attempts || 0;
    return sum;
  }

  /** Play the chapter sentence by sentence in the page's one player. */
  async play() {
    say(this.status, "");
    try {
      const rows = await this.sentenceRows();
      if (!rows.length) return say(this.status, "This chapter has no sentences to play.");
      this.player.play(rows);
    } catch (error) {
      say(this.status, `Could not play this chapter: ${error.message}`, "error");
    }
  }

  async download() {
    const fmt = this.format.value;
    this.downloadButton.disabled = true;
    say(this.status, `Preparing the ${fmt.toUpperCase()} file…`);
    try {
      const name = await download(
        `v1/chapters/${this.id}/audio?format=${fmt}&v=${this.version()}`,
        `chapter-${this.summary.position + 1}.${fmt}`,
      );
      say(this.status, `Downloaded ${name}.`, "ok");
      this.status.dataset.condition = "";
    } catch (error) {
      say(this.status, error.message, "error");
      this.status.dataset.condition = error.status === 409 ? "not-ready" : "";
    } finally {
      this.downloadButton.disabled = false;
    }
  }

  /** A "not ready" message ends when every sentence of the chapter has audio. */
  clearStaleNotice(counts) {
    if (this.status.dataset.condition !== "not-ready") return;
    if (counts.total && counts.done === counts.total) {
      say(this.status, "");
      this.status.dataset.condition = "";
    }
  }
}
