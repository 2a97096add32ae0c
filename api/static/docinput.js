// The "document" part of a form: paste text or upload a .txt / .md file.

import { request } from "./api.js";
import { h, uid } from "./dom.js";

const ACCEPT =
  ".txt,.md,.markdown,.ssml,.html,.htm,.epub,.docx,.pdf,text/plain,text/markdown,text/html," +
  "application/epub+zip,application/pdf," +
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const FILE_LABEL = "File (text, Markdown, EPUB, Word, HTML or PDF)";

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

  const pastePanel = h(
    "div",
    { class: "panel" },
    h("div", { class: "field" }, h("label", { for: pasteId }, "Text"), textarea),
    h("div", { class: "field" }, h("label", { for: formatId }, "The text is"), format),
  );
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
    if (!/\.(txt|md|markdown|ssml|html?|epub|docx|pdf)$/i.test(chosen.name)) {
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
