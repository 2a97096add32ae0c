// The project page's "Project settings": rename, speed, re-synthesize everything, the voice (on
// the project's voices page), remove a document, delete the project; and the filter that walks
// through the sentences flagged for review.

import { request } from "./api.js";
import { button, h, liveRegion, plural, say, uid } from "./dom.js";

const SPEED_MIN = 0.25;
const SPEED_MAX = 4;

/** A button that asks "are you sure?" in place (no modal): returns {element, reset()}. */
function confirmButton(label, question, confirmLabel, onConfirm, accessibleName) {
  const start = button(label, () => ask(true), "btn btn-warn");
  if (accessibleName) start.setAttribute("aria-label", accessibleName);
  const text = h("span", { class: "confirm-question" }, question);
  const yes = button(confirmLabel, async () => {
    yes.disabled = true;
    try {
      await onConfirm();
    } finally {
      yes.disabled = false;
    }
  }, "btn btn-warn");
  const no = button("Keep it", () => ask(false), "btn");
  const confirm = h("span", { class: "confirm", hidden: true }, text, yes, no);
  const element = h("span", { class: "confirm-wrap" }, start, confirm);
  function ask(open) {
    confirm.hidden = !open;
    start.hidden = open;
    (open ? no : start).focus();
  }
  return { element, reset: () => ask(false) };
}

export class ProjectSettings {
  constructor(page) {
    this.page = page;
    this.documentsSeen = "";
    const nameId = uid("project-name");
    const speedId = uid("project-speed");
    this.nameInput = h("input", { id: nameId, type: "text", maxlength: "200", autocomplete: "off" });
    this.speedInput = h("input", {
      id: speedId,
      type: "number",
      min: String(SPEED_MIN),
      max: String(SPEED_MAX),
      step: "0.05",
    });
    this.status = liveRegion();
    this.status.hidden = true;
    const nameForm = h(
      "form",
      { class: "inline-form", novalidate: true, "aria-label": "Rename the project" },
      h("div", { class: "field" }, h("label", { for: nameId }, "Name"), this.nameInput),
      h("button", { type: "submit", class: "btn" }, "Rename"),
    );
    nameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.rename();
    });
    const speedForm = h(
      "form",
      { class: "inline-form", novalidate: true, "aria-label": "Speaking speed" },
      h(
        "div",
        { class: "field" },
        h("label", { for: speedId }, `Speed (${SPEED_MIN} to ${SPEED_MAX}, 1 is the voice's own)`),
        this.speedInput,
      ),
      h("button", { type: "submit", class: "btn" }, "Save speed"),
    );
    speedForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveSpeed();
    });
    this.redoButton = button("Re-synthesize every sentence", () => this.redoAll(), "btn");
    this.voiceLink = h("a", { href: `#/projects/${page.id}/voices` }, "Choose the voice");
    this.documentList = h("ul", { class: "document-list" });
    this.deleteProject = confirmButton(
      "Delete project…",
      "Delete this project with all its audio?",
      "Delete for good",
      () => this.remove(),
    );
    this.element = h(
      "details",
      { class: "card project-settings" },
      h("summary", {}, h("span", { class: "summary-title" }, "Project settings")),
      h(
        "div",
        { class: "stack" },
        nameForm,
        speedForm,
        h(
          "p",
          { class: "muted" },
          "A new voice or speed is used for every sentence synthesized from now on. ",
          this.voiceLink,
          ".",
        ),
        h(
          "div",
          { class: "toolbar-group" },
          this.redoButton,
          h("span", { class: "muted" }, "(the current takes are kept to compare)"),
        ),
        this.status,
        h("h3", {}, "Documents"),
        this.documentList,
        h("h3", {}, "Delete"),
        this.deleteProject.element,
      ),
    );

    const filterId = uid("only-review");
    this.filterCheck = h("input", { id: filterId, type: "checkbox" });
    this.filterCount = h("span", { class: "muted" });
    this.nextFlagged = button("Next flagged sentence", () => this.goToFlagged(), "btn btn-small");
    this.reviewFilter = h(
      "div",
      { class: "review-filter toolbar-group" },
      h("label", { class: "check", for: filterId }, this.filterCheck, "Show only sentences that need review"),
      this.filterCount,
      this.nextFlagged,
    );
    this.filterCheck.addEventListener("change", () => this.applyFilter());
    this.flagIndex = -1;
  }

  /** A ProjectDetail arrived. */
  apply(detail) {
    if (document.activeElement !== this.nameInput) this.nameInput.value = detail.name;
    if (document.activeElement !== this.speedInput) this.speedInput.value = String(detail.speed);
    const docs = detail.documents || [];
    const key = JSON.stringify(docs.map((d) => d.id));
    if (key !== this.documentsSeen) {
      this.documentsSeen = key;
      this.renderDocuments(docs, detail.chapters);
    }
    this.redoButton.disabled = !detail.counts.done;
    this.countFlagged();
  }

  renderDocuments(docs, chapters) {
    if (!docs.length) {
      this.documentList.replaceChildren(h("li", { class: "muted" }, "No documents yet."));
      return;
    }
    this.documentList.replaceChildren(
      ...docs.map((doc, index) => {
        const name = doc.filename || `Pasted text ${index + 1}`;
        const count = chapters.filter((c) => c.document_id === doc.id).length;
        const remove = confirmButton(
          "Remove…",
          `Remove “${name}” and its audio?`,
          "Remove for good",
          () => this.removeDocument(doc, name),
          `Remove the document “${name}”`,
        );
        return h(
          "li",
          { class: "document-item" },
          h("span", {}, `${name} · ${plural(count, "chapter")}`),
          remove.element,
        );
      }),
    );
  }

  async rename() {
    const name = this.nameInput.value.trim();
    if (!name) {
      say(this.status, "Type a name for the project.", "error");
      this.nameInput.focus();
      return;
    }
    await this.patch({ name }, "Renamed.");
  }

  async saveSpeed() {
    const speed = Number(this.speedInput.value);
    if (!Number.isFinite(speed) || speed < SPEED_MIN || speed > SPEED_MAX) {
      say(this.status, `Give a speed between ${SPEED_MIN} and ${SPEED_MAX}.`, "error");
      this.speedInput.focus();
      return;
    }
    await this.patch(
      { speed },
      "Speed saved. New sentences use it; re-synthesize every sentence to apply it to the rest.",
    );
  }

  async patch(body, done) {
    try {
      const response = await request(`v1/projects/${this.page.id}`, { method: "PATCH", json: body });
      await response.json();
      say(this.status, done, "ok");
      await this.page.refresh();
    } catch (error) {
      say(this.status, error.message, "error");
    }
  }

  async redoAll() {
    this.redoButton.disabled = true;
    const started = await this.page.convert({ everything: true });
    if (started) say(this.status, "Every sentence is being synthesized again.", "ok");
    else say(this.status, "");
    this.redoButton.disabled = false;
  }

  async removeDocument(doc, name) {
    try {
      await request(`v1/projects/${this.page.id}/documents/${doc.id}`, { method: "DELETE" });
      say(this.status, `Removed “${name}”.`, "ok");
      await this.page.refresh();
      this.element.querySelector("summary").focus();
    } catch (error) {
      say(this.status, `Could not remove “${name}”: ${error.message}`, "error");
    }
  }

  async remove() {
    try {
      await request(`v1/projects/${this.page.id}`, { method: "DELETE" });
      location.hash = "#/";
    } catch (error) {
      say(this.status, `Could not delete the project: ${error.message}`, "error");
    }
  }

  flaggedRows() {
    const rows = [];
    for (const chapter of this.page.chapters.values()) {
      for (const row of chapter.order) if (row.segment.needs_review) rows.push(row);
    }
    return rows;
  }

  countFlagged() {
    const n = this.flaggedRows().length;
    this.filterCount.textContent = `(${plural(n, "sentence")} flagged)`;
    this.nextFlagged.disabled = !n;
  }

  async applyFilter() {
    const only = this.filterCheck.checked;
    if (only) {
      for (const chapter of this.page.chapters.values()) {
        await chapter.sentenceRows();
        chapter.ensureOpen();
      }
    }
    this.page.chapterList.classList.toggle("only-review", only);
    this.countFlagged();
  }

  goToFlagged() {
    const rows = this.flaggedRows();
    if (!rows.length) return;
    this.flagIndex = (this.flagIndex + 1) % rows.length;
    const row = rows[this.flagIndex];
    row.chapter.ensureOpen();
    row.element.scrollIntoView({ block: "center" });
    row.proofing.toggle.focus();
  }
}
