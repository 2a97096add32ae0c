// One chapter on the project page: its paragraphs and sentences with their status, and the
// listen / fix / download controls. Rows are updated in place from live events, so an open
// editor or a playing sentence survives every update.

import { getJSON, request } from "./api.js";
import { button, excerpt, formatLength, h, liveRegion, say, uid } from "./dom.js";
import { spokenControls } from "./lexicon.js";
import { clearPlayer, download, formatPicker, playInto } from "./media.js";
import { followSentences } from "./timings.js";

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
    this.editButton = button("Edit", () => this.toggleEditor(), "btn btn-small btn-quiet");
    this.retryButton = button("Retry", () => this.retry(), "btn btn-small btn-warn");
    this.error = h("p", { class: "seg-error" });
    this.message = liveRegion("seg-msg");
    this.message.hidden = true;
    this.player = h("div", { class: "player", hidden: true });
    this.editor = null;
    this.spoken = spokenControls(this);
    this.element = h(
      "li",
      { class: "seg", dataset: { segmentId: String(segment.id) } },
      h("div", { class: "seg-head" }, this.badge, this.text, this.length),
      h(
        "div",
        { class: "seg-actions" },
        this.playButton,
        this.editButton,
        this.spoken.toggle,
        this.retryButton,
      ),
      this.error,
      this.message,
      this.spoken.panel,
      this.player,
    );
    this.render();
  }

  render() {
    const s = this.segment;
    const n = this.number;
    this.element.className = `seg seg-${s.status}`;
    this.element.dataset.status = s.status;
    this.badge.className = `badge badge-${s.status}`;
    this.badge.textContent = STATUS_LABEL[s.status] || s.status;
    this.text.textContent = s.text;
    const hasAudio = s.status === "done" && s.duration_ms;
    this.length.textContent = hasAudio ? formatLength(s.duration_ms) : "";
    this.playButton.hidden = s.status !== "done";
    this.playButton.setAttribute("aria-label", `Play sentence ${n}`);
    this.editButton.setAttribute("aria-label", `Edit sentence ${n}`);
    this.editButton.setAttribute("aria-expanded", String(Boolean(this.editor)));
    this.editButton.disabled = s.status === "queued";
    this.retryButton.hidden = s.status !== "failed";
    this.retryButton.setAttribute("aria-label", `Retry sentence ${n}`);
    const failed = s.status === "failed";
    this.error.hidden = !failed;
    this.error.textContent = failed ? `Failed: ${s.last_error || "no reason given"}` : "";
    this.spoken.render();
  }

  update(changes) {
    // Queued again means new audio is coming: drop the old recording rather than replay it.
    if (changes.status === "queued" && this.segment.status !== "queued") clearPlayer(this.player);
    Object.assign(this.segment, changes);
    this.render();
  }

  flash(message, kind = "") {
    say(this.message, message, kind);
  }

  async play() {
    this.flash("");
    try {
      const s = this.segment;
      await playInto(
        this.player,
        `v1/segments/${s.id}/audio?format=wav&v=${s.attempts}`,
        `Sentence ${this.number}: ${excerpt(s.text)}`,
      );
    } catch (error) {
      this.flash(`Could not play it: ${error.message}`, "error");
    }
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
      h("label", { for: id }, `Corrected text for sentence ${this.number}`),
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
    this.player.before(form);
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
  constructor(summary, { open, onConversion }) {
    this.summary = summary;
    this.onConversion = onConversion;
    this.rows = new Map();
    this.loaded = false;
    this.loading = null;
    this.reloadAfter = false;
    this.heardVersion = null;

    const headingId = uid("chapter");
    const formatId = uid("chapter-format");
    this.counts = h("span", { class: "chapter-counts muted" });
    this.title = h("h2", { id: headingId, class: "chapter-title" });
    this.list = h("div", { class: "blocks" });
    this.status = liveRegion();
    this.status.hidden = true;
    this.player = h("div", { class: "player", hidden: true });
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
        this.player,
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

  renderSummary() {
    const s = this.summary;
    this.title.textContent = s.title || `Chapter ${s.position + 1}`;
    this.counts.textContent = countsText(s.counts);
    const label = this.title.textContent;
    this.playButton.setAttribute("aria-label", `Play chapter: ${label}`);
    this.downloadButton.setAttribute("aria-label", `Download chapter: ${label}`);
  }

  /** New counts from the project; reload the sentences if they no longer add up. */
  update(summary) {
    this.summary = summary;
    this.renderSummary();
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
        return row.element;
      });
      const label = `Paragraph ${block.position + 1}`;
      return h("ol", { class: "paragraph", "aria-label": label }, items);
    });
    for (const id of [...this.rows.keys()]) if (!seen.has(id)) this.rows.delete(id);
    if (!blocks.length) blocks.push(h("p", { class: "muted" }, "This chapter has no sentences."));
    this.list.replaceChildren(...blocks);
    this.loaded = true;
  }

  /** A conversion started: every sentence without audio, or failed, is now queued. */
  markQueued() {
    for (const row of this.rows.values()) {
      if (row.segment.status === "pending" || row.segment.status === "failed") {
        row.update({ status: "queued", attempts: (row.segment.attempts || 0) + 1 });
      }
    }
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
    if (data.status === "queued") changes.attempts = (row.segment.attempts || 0) + 1;
    // A queued event from this page's own re-synthesize was already applied from its response.
    if (data.status === "queued" && row.segment.status === "queued") delete changes.attempts;
    row.update(changes);
    if (data.status === "done" || data.status === "failed") row.flash("");
    // Counts follow the rows at once; the debounced refresh from the server confirms them.
    if (this.loaded) this.counts.textContent = countsText(this.rowCounts());
    this.noteChange();
  }

  /** A re-synthesis was started from a row of this chapter. */
  segmentChanged(conversion) {
    this.noteChange();
    if (conversion) this.onConversion(conversion);
  }

  /** The chapter's audio as it is now: changes whenever a sentence is synthesized again. */
  version() {
    let sum = 0;
    for (const row of this.rows.values()) sum += row.segment.attempts || 0;
    return sum;
  }

  noteChange() {
    if (this.heardVersion !== null && this.heardVersion !== this.version()) {
      say(
        this.status,
        "A sentence changed since you played this chapter: play it again to hear the change.",
      );
    }
  }

  async play() {
    this.playButton.disabled = true;
    say(this.status, "Preparing the chapter audio…");
    try {
      const v = this.version();
      const audio = await playInto(
        this.player,
        `v1/chapters/${this.id}/audio?format=wav&mastering=none&v=${v}`,
        `Chapter: ${this.title.textContent}`,
      );
      this.unfollow?.();
      this.unfollow = await followSentences(audio, this.id, this.list);
      this.heardVersion = v;
      say(this.status, "");
    } catch (error) {
      say(this.status, error.message, "error");
    } finally {
      this.playButton.disabled = false;
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
    } catch (error) {
      say(this.status, error.message, "error");
    } finally {
      this.downloadButton.disabled = false;
    }
  }
}
