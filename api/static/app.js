// Voxmill's web UI: hash routing (#/ and #/projects/{id}) and the API key prompt.

import { apiKey, checkKey, onUnauthorized } from "./api.js";
import { focusHeading, h } from "./dom.js";
import { renderProject } from "./project.js";
import { renderHome } from "./projects.js";
import { renderProjectVoices, renderVoices } from "./voices.js";

const main = document.getElementById("main");
const notice = document.getElementById("notice");
const dialog = document.getElementById("key-dialog");
const keyForm = document.getElementById("key-form");
const keyInput = document.getElementById("key-input");
const keyRemember = document.getElementById("key-remember");
const keyError = document.getElementById("key-error");
const keySubmit = document.getElementById("key-submit");
const keyStatus = document.getElementById("key-status");

let cleanup = () => {};
let firstRender = true;

function route() {
  const hash = location.hash || "#/";
  const project = /^#\/projects\/(\d+)\/?$/.exec(hash);
  if (hash === "#/" || hash === "#") return { name: "home" };
  if (project) return { name: "project", id: Number(project[1]) };
  if (hash === "#/voices") return { name: "voices" };
  const projectVoices = /^#\/projects\/(\d+)\/voices\/?$/.exec(hash);
  if (projectVoices) return { name: "project-voices", id: Number(projectVoices[1]) };
  return { name: "missing" };
}

function render() {
  cleanup();
  cleanup = () => {};
  notice.hidden = true;
  document.title = "Voxmill";
  if (!firstRender) main.dataset.focusPending = "1";
  const r = route();
  if (r.name === "home") cleanup = renderHome(main);
  else if (r.name === "project") cleanup = renderProject(main, r.id);
  else if (r.name === "voices") cleanup = renderVoices(main);
  else if (r.name === "project-voices") cleanup = renderProjectVoices(main, r.id);
  else {
    main.replaceChildren(
      h(
        "div",
        { class: "card" },
        h("h1", { tabindex: "-1" }, "Page not found"),
        h(
          "p",
          {},
          "There is nothing at this address. ",
          h("a", { href: "#/" }, "See all projects."),
        ),
      ),
    );
  }
  if (!firstRender) window.scrollTo(0, 0);
  focusHeading(main);
  firstRender = false;
  keyStatus.hidden = !apiKey.get();
}

// --- API key -------------------------------------------------------------------------------

let askingForKey = false;

function askForKey(message) {
  apiKey.clear();
  keyStatus.hidden = true;
  keyError.textContent = message || "";
  keyError.hidden = !message;
  if (askingForKey) return;
  askingForKey = true;
  cleanup(); // stop live streams that would only be refused
  cleanup = () => {};
  main.replaceChildren(h("p", { class: "muted" }, "Waiting for an API key…"));
  keyInput.value = "";
  dialog.showModal();
  keyInput.focus();
}

// The key is required: Escape must not close the prompt and leave a page that cannot work.
// (Browsers let a repeated Escape close a dialog whatever "cancel" does, hence "close" too.)
dialog.addEventListener("cancel", (event) => event.preventDefault());
dialog.addEventListener("close", () => {
  if (askingForKey) dialog.showModal();
});

keyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) {
    keyError.textContent = "Enter the API key.";
    keyError.hidden = false;
    keyInput.focus();
    return;
  }
  keySubmit.disabled = true;
  keySubmit.textContent = "Checking…";
  const { message: problem } = await checkKey(key);
  keySubmit.disabled = false;
  keySubmit.textContent = "Use this key";
  if (problem) {
    keyError.textContent = problem;
    keyError.hidden = false;
    keyInput.select();
    keyInput.focus();
    return;
  }
  apiKey.set(key, keyRemember.checked);
  askingForKey = false;
  dialog.close();
  render();
});

onUnauthorized((message) => {
  const stored = Boolean(apiKey.get());
  askForKey(
    stored ? `Your API key no longer works: ${message} Enter a valid key.` : "",
  );
});

document.getElementById("forget-key").addEventListener("click", () => {
  apiKey.clear();
  location.reload();
});

// --- start -----------------------------------------------------------------------------------

function showNotice(message) {
  notice.textContent = message;
  notice.hidden = false;
}

window.addEventListener("unhandledrejection", (event) => {
  const message = event.reason?.message || String(event.reason);
  if (event.reason?.name === "AbortError" || event.reason?.status === 401) return;
  showNotice(`Something went wrong: ${message}`);
});

async function start() {
  // Ask for a key up front when the server wants one (and the stored one, if any, is refused).
  const key = apiKey.get();
  const { status, message } = await checkKey(key);
  if (status === 401) {
    askForKey(key ? message : "");
    return;
  }
  if (message) showNotice(message);
  render();
}

window.addEventListener("hashchange", () => {
  if (!askingForKey) render();
});
start();
