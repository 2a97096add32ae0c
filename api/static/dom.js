// Small DOM helpers: build elements without innerHTML (text from the server is never parsed as
// HTML), and format numbers for people.

/**
 * h("button", {class: "btn", type: "button", onclick: fn, "aria-label": "..."}, "Text", child)
 * Props: `class`, `text`, `dataset`, `on<event>` handlers, booleans (hidden, disabled...) and
 * any other attribute. Children: strings, nodes, arrays, or null/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (value === true) el.setAttribute(name, "");
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace a node's children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A type="button" button: button("Play", onClick, "btn btn-small"). */
export function button(label, onClick, className = "btn") {
  return h("button", { type: "button", class: className, onclick: onClick }, label);
}

let uniqueCounter = 0;
/** A fresh id for label/aria wiring. */
export function uid(prefix = "id") {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

/** "1 sentence", "3 sentences". */
export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}

/** Seconds as "45 s", "3 min 5 s", "1 h 2 min". */
export function formatSeconds(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const hours = Math.floor(m / 60);
  return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
}

/** Milliseconds of audio as "0.8 s", "12.4 s", "2:05". */
export function formatLength(ms) {
  const seconds = (ms || 0) / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** A short quote of a sentence for labels. */
export function excerpt(text, words = 6) {
  const parts = String(text || "").split(/\s+/).filter(Boolean);
  return parts.length > words ? `${parts.slice(0, words).join(" ")}…` : parts.join(" ");
}

/** A status line element whose text is read out when it changes. */
export function liveRegion(className = "status-line") {
  return h("p", { class: className, role: "status", "aria-live": "polite" });
}

/** Show a message (or clear it with "") in a status/error element. */
export function say(el, message, kind = "") {
  el.textContent = message;
  el.hidden = !message;
  el.classList.toggle("error", kind === "error");
  el.classList.toggle("ok", kind === "ok");
}

/**
 * After a navigation, move the focus to the new page's heading so keyboard and screen reader
 * users start there. Pages that render later (after a fetch) call this again once their <h1>
 * exists; only the first call that finds one acts.
 */
export function focusHeading(root) {
  if (root.dataset.focusPending !== "1") return;
  const heading = root.querySelector("h1");
  if (!heading) return;
  delete root.dataset.focusPending;
  heading.focus();
}
