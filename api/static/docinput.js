// The "document" part of a form: paste text or upload a .txt / .md file.

import { request } from "./api.js";
import { h, uid } from "./dom.js";

const ACCEPT =
  ".txt,.md,.markdown,.ssml,.html,.htm,.epub,.docx,.pdf,text/plain,text/markdown,text/html," +
  "application/epub+zip,application/pdf," +
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const FILE_LABEL = "File (text, Markdown, EPUB, Word, HTML or PDF)";

// The same test as the server's (text_processing/formats/detect.py), so the choice is visible
// before the document is split: a heading or setext underline, or two Markdown constructs.
const MD_HEADING = /^ {0,3}#{1,6}[ \t]+\S/m;
const MD_SETEXT = /^[^\n]*\w[^\n]*\n {0,3}(?:=+|-{3,})[ \t]*$/m;
const MD_SIGNS = [
  /(\*\*|__)(?=\S)[^\n]+?(?<=\S)\1/,
  /(?<![\w*])\*(?=\S)[^*\n]+?(?<=\S)\*(?![\w*])/,
  /!?\[[^\]\n]+\]\([^)\s]+(?:\s+"[^"]*")?\)/,
  /^ {0,3}(?:```|~~~)/m,
  /^ {0,3}[-*+][ \t]+\S[^\n]*\n {0,3}[-*+][ \t]+\S/m,
  /^ {0,3}1[.)][ \t]+\S[^\n]*\n {0,3}2[.)][ \t]+\S/m,
  /^ {0,3}>[ \t]?\S/m,
  /`[^`\n]+`/,
];

/** Whether pasted text is written in Markdown (see text_processing/formats/detect.py). */
export function looksLikeMarkdown(text) {
  const head = text.slice(0, 20000);
  if (MD_HEADING.test(head) || MD_SETEXT.test(head)) return true;
  return MD_SIGNS.filter((sign) => sign.test(head)).length >= 2;
}

/**
 * Fields to choose how the text arrives; returns {element, validate(), upload(projectId)}.
 * validate() returns an error message or "". upload() posts the document and resolves to the
 * API's DocumentOut.
 */
export function documentInput() {
  const group = uid("source");
  const pasteId = uid("paste");
  const fileId = uid("file");
  const formatId = uid("format");

  const pasteRadio = h("input", { type: "radio", name: group, value: "paste", checked: true });
  const fileRadio = h("input", { type: "radio", name: group, value: "file" });
  const textarea = h("textarea", {
    id: pasteId,
    name: "text",
    rows: "7",
    placeholder: "# Chapter one\n\nPaste your text here…",
  });
  const format = h(
    "select",
    { id: formatId, name: "doc-format" },
    h("option", { value: "text" }, "Plain text"),
    h("option", { value: "markdown" }, "Markdown (# headings start chapters)"),
  );
  const file = h("input", { id: fileId, type: "file", name: "file", accept: ACCEPT });

  const formatNote = h("p", { class: "format-note muted", "aria-live": "polite" });
  const pastePanel = h(
    "div",
    { class: "panel" },
    h("div", { class: "field" }, h("label", { for: pasteId }, "Text"), textarea),
    h("div", { class: "field" }, h("label", { for: formatId }, "The text is"), format, formatNote),
  );
  // Until the user picks a format, it follows what the text looks like.
  let chosenByUser = false;
  format.addEventListener("change", () => {
    chosenByUser = true;
    formatNote.textContent = "";
  });
  let detectTimer = null;
  const detect = () => {
    if (chosenByUser || !textarea.value.trim()) return;
    const markdown = looksLikeMarkdown(textarea.value);
    format.value = markdown ? "markdown" : "text";
    formatNote.textContent = markdown
      ? "This looks like Markdown: # headings start chapters, and marks such as **bold** or " +
        "link addresses are not read out. Choose “Plain text” if that is wrong."
      : "";
  };
  textarea.addEventListener("input", () => {
    clearTimeout(detectTimer);
    detectTimer = setTimeout(detect, 150);
  });
  textarea.addEventListener("paste", () => setTimeout(detect, 0));
  const filePanel = h(
    "div",
    { class: "panel", hidden: true },
    h(
      "div",
      { class: "field" },
      h("label", { for: fileId }, FILE_LABEL),
      file,
    ),
  );

  const sync = () => {
    pastePanel.hidden = !pasteRadio.checked;
    filePanel.hidden = !fileRadio.checked;
  };
  pasteRadio.addEventListener("change", sync);
  fileRadio.addEventListener("change", sync);

  const element = h(
    "fieldset",
    { class: "doc-input" },
    h("legend", {}, "Document"),
    h(
      "div",
      { class: "segmented" },
      h("label", { class: "check" }, pasteRadio, "Paste text"),
      h("label", { class: "check" }, fileRadio, "Upload a file"),
    ),
    pastePanel,
    filePanel,
  );

  function validate() {
    if (pasteRadio.checked) {
      return textarea.value.trim() ? "" : "Paste the text to convert, or choose “Upload a file”.";
    }
    const chosen = file.files?.[0];
    if (!chosen) return "Choose a document to upload, or choose “Paste text”.";
    // A name without an extension is fine: the server reads what the content is.
    if (chosen.name.includes(".") && !/\.(txt|md|markdown|ssml|html?|epub|docx|pdf)$/i.test(chosen.name)) {
      return (
        `“${chosen.name}” is not a document this server reads. ` +
        "Upload a text, Markdown, EPUB, Word (.docx), HTML or PDF file."
      );
    }
    return "";
  }

  async function upload(projectId) {
    const path = `v1/projects/${projectId}/documents`;
    let response;
    if (pasteRadio.checked) {
      response = await request(path, {
        method: "POST",
        json: { text: textarea.value, format: format.value },
      });
    } else {
      const body = new FormData();
      body.append("file", file.files[0]);
      response = await request(path, { method: "POST", body });
    }
    return response.json();
  }

  function focusFirst() {
    (pasteRadio.checked ? textarea : file).focus();
  }

  return { element, validate, upload, focusFirst };
}
