// Per sentence, on demand: what the voice is given (the spoken form), a way to give it other
// words, and "add to the project's pronunciation lexicon" for a word of the sentence.

import { postJSON } from "./api.js";
import { button, h, say, uid } from "./dom.js";

/**
 * The spoken-form controls of one sentence row. `row` is chapter.js's SentenceRow: it has
 * `segment`, `number`, `update(changes)`, `resynthesize(text)` and `chapter`.
 * Returns {toggle (a button for the row's actions), panel (an element), render()}.
 */
export function spokenControls(row) {
  const panelId = uid("spoken");
  const toggle = button("Spoken form", () => setOpen(panel.hidden), "btn btn-small btn-quiet");
  toggle.setAttribute("aria-controls", panelId);
  const shown = h("p", { class: "spoken-text" });
  const message = h("p", { class: "status-line", role: "status" });

  const spokenId = uid("spoken-edit");
  const spokenInput = h("textarea", { id: spokenId, rows: "2", maxlength: "2000" });
  const sayForm = h(
    "form",
    { class: "spoken-edit", novalidate: true },
    h("label", { for: spokenId }, `Words to say for ${row.label}`),
    spokenInput,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn-small" }, "Say this instead")),
  );
  sayForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const words = spokenInput.value.trim();
    if (!words) return say(message, "Type the words to say.", "error");
    try {
      const response = await postJSON(`v1/segments/${row.segment.id}/resynthesize`, {
        spoken_text: words,
      });
      row.update(response.segment);
      row.chapter.segmentChanged(response.conversion);
      say(message, "Sent for synthesis with these words.", "ok");
    } catch (error) {
      say(message, error.message, "error");
    }
  });

  const wordId = uid("lex-word");
  const howId = uid("lex-how");
  const kindId = uid("lex-kind");
  const word = h("input", { id: wordId, type: "text", maxlength: "100", autocomplete: "off" });
  const how = h("input", { id: howId, type: "text", maxlength: "200", autocomplete: "off" });
  const kind = h(
    "select",
    { id: kindId },
    h("option", { value: "alias" }, "as these words"),
    h("option", { value: "phoneme" }, "as IPA phonemes"),
  );
  const lexForm = h(
    "form",
    { class: "lexicon-add", novalidate: true, "aria-label": `Add to the pronunciation lexicon` },
    h("div", { class: "field" }, h("label", { for: wordId }, "Word"), word),
    h("div", { class: "field" }, h("label", { for: kindId }, "Read it"), kind),
    h("div", { class: "field" }, h("label", { for: howId }, "Pronunciation"), how),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "btn btn-small" }, "Add to the project's pronunciation lexicon"),
    ),
  );
  lexForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const grapheme = word.value.trim();
    const value = how.value.trim();
    if (!grapheme || !value) return say(message, "Give the word and how to read it.", "error");
    try {
      await postJSON(`v1/projects/${row.segment.project_id}/lexicon`, {
        grapheme,
        [kind.value]: value,
      });
      say(message, `Added “${grapheme}”. Re-synthesize to hear it.`, "ok");
      row.chapter.load(); // the spoken forms it touches have changed
    } catch (error) {
      say(message, error.message, "error");
    }
  });

  const panel = h(
    "div",
    { id: panelId, class: "spoken-panel", hidden: true },
    h("p", { class: "muted" }, "What the voice is given:"),
    shown,
    sayForm,
    lexForm,
    message,
  );

  function setOpen(open) {
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      spokenInput.value = row.segment.spoken_text || "";
      const selected = String(window.getSelection?.() || "").trim();
      if (selected && !word.value) word.value = selected;
    }
  }

  function render() {
    const s = row.segment;
    shown.textContent = s.spoken_text ? s.spoken_text : "(nothing to say: a pause)";
    toggle.setAttribute("aria-label", `Spoken form of ${row.label}`);
    toggle.setAttribute("aria-expanded", String(!panel.hidden));
  }

  return { toggle, panel, render };
}
