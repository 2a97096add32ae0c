// The project page: chapters → paragraphs → sentences, "Convert", a live progress bar fed by
// the project's event stream, and downloads of the whole project.

import { getJSON, postJSON } from "./api.js";
import { ChapterView } from "./chapter.js";
import { documentInput } from "./docinput.js";
import { button, focusHeading, formatSeconds, h, liveRegion, plural, say } from "./dom.js";
import { download, formatPicker, revokeAll } from "./media.js";
import { Player } from "./player.js";
import { ProjectSettings } from "./projectsettings.js";
import { LiveStream } from "./sse.js";

// Projects up to this many sentences open every chapter at once; bigger ones open on demand.
const OPEN_ALL_UP_TO = 400;
// Counts are refreshed from the API at most this often while events stream in.
const REFRESH_MS = 700;
// After a failed refresh, the next try comes this much later.
const RETRY_MS = 2000;

// this.conversion is always a ConversionOut (GET /v1/conversions/{id}): the REST API, the
// `conversion` event and a `segment` event's `conversion` field all carry that one schema.

class ProjectPage {
  constructor(root, projectId) {
    this.root = root;
    this.id = projectId;
    this.project = null;
    this.conversion = null;
    this.chapters = new Map();
    this.refreshTimer = null;
    this.closed = false;
    this.stream = null;
    this.player = new Player();
  }

  async start() {
    this.root.replaceChildren(
      h("p", { class: "muted loading" }, "Loading the project…"),
    );
    let detail;
    try {
      detail = await getJSON(`v1/projects/${this.id}`);
    } catch (error) {
      if (this.closed) return;
      const message =
        error.status === 404
          ? "This project does not exist any more: it may have been deleted."
          : error.message;
      this.showGone("Project not available", message);
      return;
    }
    if (this.closed) return;
    this.build(detail);
    this.apply(detail);
    focusHeading(this.root);
    this.stream = new LiveStream(`v1/projects/${this.id}/events`, {
      onEvent: (event) => this.onEvent(event),
      onState: (state, message) => this.showLive(state, message),
      onFatal: (status, message) =>
        status === 404
          ? this.showGone("Project deleted", "This project was deleted.")
          : this.tell(message, "error", "stream"),
    });
    this.stream.start();
    // The time left counts down between events.
    this.ticker = setInterval(() => {
      if (this.conversion?.state === "running") this.renderProgress();
    }, 1000);
  }

  stop() {
    this.closed = true;
    this.stream?.stop();
    this.player.close();
    clearTimeout(this.refreshTimer);
    clearTimeout(this.retryTimer);
    clearInterval(this.ticker);
    revokeAll();
  }

  /** Replace the page with a short explanation (the project is not there). */
  showGone(title, message) {
    this.stream?.stop();
    this.player.close();
    this.root.replaceChildren(
      h(
        "div",
        { class: "card" },
        h("h1", { tabindex: "-1" }, title),
        h("p", { class: "error", role: "alert" }, message),
        h("p", {}, h("a", { href: "#/" }, "Back to the projects")),
      ),
    );
    this.root.dataset.focusPending = "1";
    focusHeading(this.root);
  }

  build(detail) {
    this.title = h("h1", { tabindex: "-1" }, detail.name);
    this.meta = h("p", { class: "muted" });
    this.live = h("span", { class: "live", role: "status", "aria-live": "polite" });
    this.progress = h("progress", { max: "100", value: "0", "aria-label": "Conversion progress" });
    this.progressText = h("p", { class: "progress-text", "aria-live": "polite" });
    this.countsText = h("p", { class: "muted counts-text" });
    this.convertButton = h(
      "button",
      { type: "button", class: "btn btn-primary", onclick: () => this.convert() },
      "Convert",
    );
    this.pauseButton = button("Pause", () => this.control("pause"), "btn");
    this.pauseButton.setAttribute("aria-label", "Pause the conversion");
    this.resumeButton = button("Resume", () => this.control("resume"), "btn btn-primary");
    this.resumeButton.setAttribute("aria-label", "Resume the conversion");
    this.cancelButton = button("Cancel", () => this.control("cancel"), "btn btn-warn");
    this.cancelButton.setAttribute("aria-label", "Cancel the conversion");
    this.playAllButton = button("Play project", () => this.playFrom(null), "btn");
    this.playAllButton.setAttribute("aria-label", "Play the project from the start");
    this.actionStatus = liveRegion();
    this.actionStatus.hidden = true;
    // What the action status shows, so that it can be cleared when its condition ends.
    this.actionCondition = "";

    const picker = formatPicker("project-format");
    this.format = picker.select;
    this.downloadButton = h(
      "button",
      { type: "button", class: "btn", onclick: () => this.download() },
      "Download project",
    );
    this.downloadStatus = liveRegion();
    this.downloadStatus.hidden = true;

    this.chapterList = h("div", { class: "chapters" });
    this.emptyNote = h(
      "p",
      { class: "muted", hidden: true },
      "This project has no text yet: add a document below.",
    );
    this.addDoc = this.addDocumentForm();
    this.settings = new ProjectSettings(this);

    this.root.replaceChildren(
      h(
        "nav",
        { class: "crumbs", "aria-label": "Breadcrumb" },
        h("a", { href: "#/" }, "← Projects"),
        h("a", { href: `#/projects/${detail.id}/voices`, class: "crumb-side" }, "Voices of this project"),
      ),
      h("div", { class: "page-head" }, this.title, this.meta, this.live),
      h(
        "section",
        { class: "card progress-card", "aria-labelledby": "progress-title" },
        h("h2", { id: "progress-title", class: "visually-hidden" }, "Conversion"),
        h(
          "div",
          { class: "progress-row" },
          h("div", { class: "progress-main" }, this.progress, this.progressText, this.countsText),
          h(
            "div",
            { class: "toolbar-group conversion-actions" },
            this.convertButton,
            this.pauseButton,
            this.resumeButton,
            this.cancelButton,
          ),
        ),
        this.actionStatus,
        h(
          "div",
          { class: "toolbar download-row" },
          this.playAllButton,
          h("div", { class: "toolbar-group" }, picker.field, this.downloadButton),
        ),
        this.downloadStatus,
      ),
      h("h2", { class: "section-title" }, "Chapters"),
      this.settings.reviewFilter,
      this.emptyNote,
      this.chapterList,
      this.addDoc,
      this.settings.element,
      this.player.element,
    );
  }

  addDocumentForm() {
    const doc = documentInput();
    const problem = h("p", { class: "error", role: "alert", hidden: true });
    const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Add the document");
    const form = h(
      "form",
      { class: "stack", novalidate: true },
      doc.element,
      problem,
      h("div", { class: "actions" }, submit),
    );
    const details = h(
      "details",
      { class: "card add-doc" },
      h("summary", {}, h("span", { class: "summary-title" }, "Add a document")),
      form,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = doc.validate();
      if (error) {
        say(problem, error, "error");
        doc.focusFirst();
        return;
      }
      submit.disabled = true;
      say(problem, "");
      try {
        const added = await doc.upload(this.id);
        details.open = false;
        this.tell(
          `Added ${plural(added.segments, "sentence")} in ` +
            `${plural(added.chapters.length, "chapter")}. Press Convert to synthesize them.`,
          "ok",
          "added",
        );
        await this.refresh();
      } catch (err) {
        say(problem, err.message, "error");
      } finally {
        submit.disabled = false;
      }
    });
    return details;
  }

  /** Apply a ProjectDetail (first load, `snapshot` event or refresh). */
  apply(detail) {
    this.project = detail;
    this.title.textContent = detail.name;
    document.title = `${detail.name} · Voxmill`;
    const size = plural(detail.counts.total, "sentence");
    this.meta.textContent = `Voice ${detail.voice} · speed ${detail.speed}× · ${size}`;
    this.settings.apply(detail);
    if (detail.active_conversion) {
      this.conversion = detail.active_conversion;
      this.conversionAt = performance.now();
    } else if (this.conversion && this.conversion.state !== "finished") {
      this.fetchConversion(this.conversion.id);
    }
    const openAll = detail.counts.total <= OPEN_ALL_UP_TO;
    detail.chapters.forEach((summary, index) => {
      const view = this.chapters.get(summary.id);
      if (view) {
        view.update(summary);
        return;
      }
      const created = new ChapterView(summary, {
        open: openAll || (index === 0 && this.chapters.size === 0),
        onConversion: (c) => this.onConversion(c),
        player: this.player,
        playFrom: (row) => this.playFrom(row),
        onReview: () => this.settings.countFlagged(),
      });
      this.chapters.set(summary.id, created);
      this.chapterList.append(created.element);
    });
    // Chapters of a removed document go; the rest keep their reading order.
    const ids = new Set(detail.chapters.map((c) => c.id));
    for (const [id, view] of [...this.chapters]) {
      if (!ids.has(id)) {
        view.element.remove();
        this.chapters.delete(id);
      }
    }
    for (const summary of detail.chapters) this.chapterList.append(this.chapters.get(summary.id).element);
    this.emptyNote.hidden = detail.chapters.length > 0;
    if (!detail.chapters.length) this.addDoc.open = true;
    this.renderProgress();
  }

  async fetchConversion(id) {
    try {
      const data = await getJSON(`v1/conversions/${id}`);
      if (this.closed) return;
      this.conversion = data;
      this.conversionAt = performance.now();
      this.renderProgress();
    } catch {
      // the next event or snapshot corrects it
    }
  }

  /** Show a message in the action line; `condition` names what it is about, so that it goes
   * away when that ends (see clearAction). */
  tell(message, kind = "", condition = "") {
    say(this.actionStatus, message, kind);
    this.actionCondition = message ? condition : "";
  }

  /** Clear the action line if it still speaks of `condition`. */
  clearAction(condition) {
    if (this.actionCondition === condition) this.tell("");
  }

  async refresh() {
    try {
      const detail = await getJSON(`v1/projects/${this.id}`);
      if (this.closed) return;
      this.apply(detail);
      this.clearAction("refresh");
    } catch (error) {
      if (this.closed) return;
      if (error.status === 404) {
        this.showGone("Project deleted", "This project was deleted.");
        return;
      }
      this.tell(`Could not update the page: ${error.message}`, "error", "refresh");
      // Try again until it works: the message must not outlive the problem.
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.refresh(), RETRY_MS);
    }
  }

  /** Refresh the counts soon, at most once per REFRESH_MS however fast events come. */
  scheduleRefresh() {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.refresh();
    }, REFRESH_MS);
  }

  onEvent({ type, data }) {
    if (this.closed || !data || typeof data !== "object") return;
    if (type === "snapshot") {
      this.apply(data);
    } else if (type === "segment") {
      this.chapters.get(data.chapter_id)?.applyEvent(data);
      this.countFromRows();
      if (data.conversion) {
        this.conversion = data.conversion;
        this.conversionAt = performance.now();
      }
      this.renderProgress();
      this.scheduleRefresh();
    } else if (type === "conversion") {
      this.onConversion(data);
      this.scheduleRefresh();
    } else if (type === "deleted") {
      this.showGone("Project deleted", "This project was deleted, with its audio.");
    }
  }

  /** When every chapter's sentences are loaded, the project's counts are their sum. */
  countFromRows() {
    const chapters = [...this.chapters.values()];
    if (!this.project || !chapters.length || !chapters.every((c) => c.loaded)) return;
    const sum = { pending: 0, queued: 0, done: 0, failed: 0, total: 0 };
    for (const chapter of chapters) {
      for (const [key, value] of Object.entries(chapter.rowCounts())) sum[key] += value;
    }
    this.project.counts = { ...this.project.counts, ...sum };
  }

  onConversion(conversion) {
    this.conversion = conversion;
    this.conversionAt = performance.now();
    const held = ["paused", "cancelled"].includes(conversion.state) && conversion.kind !== "segment";
    if (held) {
      for (const chapter of this.chapters.values()) chapter.markHeld();
      this.countFromRows();
    }
    this.renderProgress();
  }

  showLive(state, message) {
    const text = {
      connecting: "Connecting to live updates…",
      live: "● Live",
      reconnecting: "Live updates interrupted; reconnecting…",
      closed: "",
    }[state];
    this.live.textContent = message && state !== "live" ? `${text} (${message})` : text;
    this.live.dataset.state = state;
    // Back online: problems of reaching the server are over.
    if (state === "live") this.clearAction("refresh");
  }

  renderProgress() {
    const counts = this.project.counts;
    const c = this.conversion;
    const running = c && c.state === "running";
    const paused = c && c.state === "paused" && c.kind !== "segment";
    const showConversion = c && (running || c.kind !== "segment");
    let percent;
    let text;
    if (showConversion) {
      percent = c.percent;
      const what = c.kind === "segment" ? "Re-synthesizing" : "Converting";
      if (running) {
        // The estimate was made when it arrived: count it down since, so that a page that
        // hears nothing for a while (a reconnect, a slow sentence) does not show a stale one.
        const since = (performance.now() - (this.conversionAt || performance.now())) / 1000;
        const eta = c.eta_s === null || c.eta_s === undefined ? null : c.eta_s - since;
        const left =
          eta === null
            ? "estimating the time left…"
            : eta > 1
              ? `about ${formatSeconds(eta)} left`
              : "almost done…";
        const finished = `${c.done + c.failed} of ${plural(c.total, "sentence")}`;
        text = `${what}: ${finished} · ${Math.round(percent)} % · ${left}`;
      } else if (paused) {
        text =
          `Conversion paused: ${c.done + c.failed} of ${plural(c.total, "sentence")} ` +
          "finished · press Resume to go on";
      } else if (c.state === "cancelled") {
        text = `Conversion cancelled: ${c.done} of ${plural(c.total, "sentence")} done`;
      } else {
        text = `Conversion finished: ${c.done} of ${plural(c.total, "sentence")} done`;
        if (c.failed) text += `, ${c.failed} failed (see below; retry or fix them)`;
      }
    } else {
      percent = counts.total ? (100 * counts.done) / counts.total : 0;
      text = counts.total
        ? `${counts.done} of ${plural(counts.total, "sentence")} have audio`
        : "Nothing to convert yet.";
    }
    this.progress.value = percent;
    this.progress.setAttribute("aria-valuetext", `${Math.round(percent)} %`);
    this.progress.dataset.percent = String(Math.round(percent * 10) / 10);
    this.progressText.textContent = text;
    const rest = counts.pending + counts.failed;
    const parts = [`${counts.done} done`];
    if (counts.queued) parts.push(`${counts.queued} in progress`);
    if (counts.failed) parts.push(`${counts.failed} failed`);
    if (counts.pending) parts.push(`${counts.pending} not converted`);
    this.countsText.textContent = counts.total ? `All sentences: ${parts.join(" · ")}` : "";
    const converting = Boolean(running && c.kind !== "segment");
    this.convertButton.hidden = converting || paused;
    this.convertButton.disabled = Boolean(running) || rest === 0;
    this.convertButton.textContent = counts.done && rest ? "Convert the rest" : "Convert";
    this.convertButton.title = running
      ? "A sentence is being re-synthesized; wait until it is done"
      : rest === 0 && counts.total
        ? "Every sentence has audio"
        : counts.total
          ? ""
          : "Add a document first";
    this.pauseButton.hidden = !converting;
    this.resumeButton.hidden = !paused;
    this.cancelButton.hidden = !(converting || paused);
    this.playAllButton.disabled = !counts.total;
    // A "not ready" download message ends when every sentence has audio.
    if (counts.total && counts.done === counts.total) {
      if (this.downloadStatus.dataset.condition === "not-ready") say(this.downloadStatus, "");
    }
    // Keep the focus on the conversion controls when the one that was used goes away.
    const lost = document.activeElement;
    if (lost && lost.hidden && this.root.contains(lost)) this.focusConversionControl();
  }

  focusConversionControl() {
    const visible = [this.pauseButton, this.resumeButton, this.convertButton].find(
      (b) => !b.hidden && !b.disabled,
    );
    (visible || this.progress.closest("section").querySelector("h2") || this.title).focus();
  }

  /** Pause, resume or cancel the running conversion. */
  async control(action) {
    const c = this.conversion;
    if (!c) return;
    const done = { pause: "Paused", resume: "Resumed", cancel: "Cancelled" }[action];
    try {
      this.onConversion(await postJSON(`v1/conversions/${c.id}/${action}`, {}));
      this.tell(
        action === "cancel"
          ? "Cancelled. The sentences without audio wait until you press Convert again."
          : `${done}.`,
        "ok",
        "control",
      );
      this.scheduleRefresh();
      this.focusConversionControl();
    } catch (error) {
      this.tell(`Could not ${action} the conversion: ${error.message}`, "error", "control");
    }
  }

  /** Play from `row` (null: the first sentence) to the end of the project. */
  async playFrom(row) {
    const rows = [];
    for (const chapter of this.chapters.values()) rows.push(...(await chapter.sentenceRows()));
    if (!rows.length) return;
    this.player.play(rows, row ? Math.max(rows.indexOf(row), 0) : 0);
  }

  async convert(options = {}) {
    this.convertButton.disabled = true;
    this.tell("");
    try {
      this.onConversion(await postJSON(`v1/projects/${this.id}/conversions`, options));
      for (const chapter of this.chapters.values()) chapter.markQueued(options.everything);
      this.scheduleRefresh();
      this.focusConversionControl();
      return true;
    } catch (error) {
      this.tell(`Could not start the conversion: ${error.message}`, "error", "convert");
      this.renderProgress();
      return false;
    }
  }

  async download() {
    const fmt = this.format.value;
    this.downloadButton.disabled = true;
    say(this.downloadStatus, `Preparing the ${fmt.toUpperCase()} file of the whole project…`);
    try {
      const name = await download(
        `v1/projects/${this.id}/audio?format=${fmt}`,
        `project-${this.id}.${fmt}`,
      );
      say(this.downloadStatus, `Downloaded ${name}.`, "ok");
      this.downloadStatus.dataset.condition = "";
    } catch (error) {
      say(this.downloadStatus, error.message, "error");
      this.downloadStatus.dataset.condition = error.status === 409 ? "not-ready" : "";
    } finally {
      this.downloadButton.disabled = false;
    }
  }
}

/** Render the project page into `root`; returns a cleanup function. */
export function renderProject(root, projectId) {
  const page = new ProjectPage(root, projectId);
  page.start();
  return () => page.stop();
}
