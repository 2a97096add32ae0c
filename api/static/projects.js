// The home page: the projects with their progress, "New project", and "Try a voice".

import { getJSON, postJSON, request } from "./api.js";
import { documentInput } from "./docinput.js";
import { h, liveRegion, plural, say, uid } from "./dom.js";
import { clearPlayer, playInto } from "./media.js";

const PAGE_SIZE = 50;
const DETAIL_CONCURRENCY = 6;
// How often the list asks for changes (conversions progress, projects added elsewhere).
const REFRESH_MS = 4000;

/** A project's state in a few words, from its counts and running conversion. */
function projectStatus(detail) {
  const c = detail.counts;
  const running = detail.active_conversion;
  if (!c.total) return { label: "No text yet", tone: "idle", percent: 0 };
  const percent = Math.round((100 * c.done) / c.total);
  if (running && running.state === "running") {
    return { label: `Converting ${Math.round(running.percent)} %`, tone: "busy", percent };
  }
  if (c.failed) return { label: `${plural(c.failed, "sentence")} failed`, tone: "bad", percent };
  if (c.done === c.total) return { label: "Done", tone: "good", percent };
  if (c.done === 0) return { label: "Not converted", tone: "idle", percent };
  return { label: "Partly converted", tone: "idle", percent };
}

let voicesPromise = null;
/** GET /v1/voices, once per page load (and again after a failure). */
function loadVoices() {
  voicesPromise ??= getJSON("v1/voices").catch((error) => {
    voicesPromise = null;
    throw error;
  });
  return voicesPromise;
}

/** A labelled voice <select>, filled when the voices arrive; returns {field, select}. */
function voicePicker(label = "Voice") {
  const id = uid("voice");
  const select = h("select", { id, name: "voice", disabled: true }, h("option", {}, "Loading…"));
  const hint = h("p", { class: "hint error", hidden: true });
  loadVoices()
    .then((voices) => {
      select.replaceChildren(
        ...voices.map((v) =>
          h(
            "option",
            { value: v.id, selected: v.default },
            v.default ? `${v.name} (default)` : v.name,
          ),
        ),
      );
      select.disabled = voices.length === 0;
      if (!voices.length) say(hint, "This server has no voices installed.", "error");
    })
    .catch((error) => {
      select.replaceChildren(h("option", { value: "" }, "Default voice"));
      select.disabled = false;
      if (error.status !== 401) say(hint, `Could not load the voices: ${error.message}`, "error");
    });
  const field = h("div", { class: "field" }, h("label", { for: id }, label), select, hint);
  return { field, select };
}

function speedField(label = "Speed") {
  const id = uid("speed");
  const input = h("input", {
    id,
    type: "number",
    name: "speed",
    min: "0.25",
    max: "4",
    step: "0.05",
    value: "1",
    inputmode: "decimal",
  });
  const field = h(
    "div",
    { class: "field field-narrow" },
    h("label", { for: id }, label),
    input,
  );
  return { field, input };
}

function readSpeed(input) {
  const speed = Number(input.value || "1");
  if (!Number.isFinite(speed) || speed < 0.25 || speed > 4) {
    throw new Error("Speed must be a number between 0.25 and 4 (1 is normal).");
  }
  return speed;
}

function projectItem(project) {
  const progress = h("progress", {
    max: "100",
    value: "0",
    "aria-label": `Progress of ${project.name}`,
  });
  const status = h("span", { class: "pill", text: "…" });
  const counts = h("span", { class: "muted" });
  const item = h(
    "li",
    { class: "project-item", dataset: { projectId: String(project.id) } },
    h(
      "div",
      { class: "project-line" },
      h("a", { class: "project-name", href: `#/projects/${project.id}` }, project.name),
      status,
    ),
    h("div", { class: "project-meta" }, h("span", {}, `Voice: ${project.voice}`), counts),
    progress,
  );
  const link = item.querySelector(".project-name");
  const rename = (name) => {
    if (link.textContent !== name) link.textContent = name;
    progress.setAttribute("aria-label", `Progress of ${name}`);
  };
  const fill = (detail) => {
    rename(detail.name);
    const s = projectStatus(detail);
    status.textContent = s.label;
    status.className = `pill pill-${s.tone}`;
    progress.value = s.percent;
    counts.textContent = detail.counts.total
      ? `${detail.counts.done} of ${plural(detail.counts.total, "sentence")} done`
      : "";
  };
  const fail = (error) => {
    status.textContent = "Unknown";
    status.className = "pill";
    counts.textContent = error.message;
  };
  return { item, fill, fail, rename };
}

async function fillDetails(entries) {
  const queue = [...entries];
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      try {
        next.fill(await getJSON(`v1/projects/${next.id}`));
      } catch (error) {
        next.fail(error);
      }
    }
  };
  await Promise.all(Array.from({ length: DETAIL_CONCURRENCY }, worker));
}

/** The project list; it follows changes (new, converting, renamed, deleted projects) by
 * asking again every REFRESH_MS while the page is shown. Returns {element, stop()}. */
function projectList() {
  const list = h("ul", { class: "project-list", "aria-label": "Projects" });
  const message = h("p", { class: "muted", text: "Loading projects…" });
  const more = h("button", { type: "button", class: "btn", hidden: true }, "Show more projects");
  const shown = new Map(); // project id -> entry
  let wanted = PAGE_SIZE;
  let timer = null;
  let stopped = false;

  async function load() {
    more.disabled = true;
    try {
      const page = await getJSON(`v1/projects?limit=${Math.min(wanted, 200)}&offset=0`);
      if (stopped) return;
      const entries = page.items.map((p) => {
        let entry = shown.get(p.id);
        if (!entry) {
          entry = { id: p.id, ...projectItem(p) };
          shown.set(p.id, entry);
        }
        entry.rename(p.name);
        return entry;
      });
      const ids = new Set(page.items.map((p) => p.id));
      for (const [id, entry] of [...shown]) {
        if (!ids.has(id)) {
          entry.item.remove();
          shown.delete(id);
        }
      }
      list.replaceChildren(...entries.map((e) => e.item));
      say(message, page.total ? "" : "No projects yet. Create one with the form on this page.");
      more.hidden = entries.length >= page.total;
      await fillDetails(entries);
    } catch (error) {
      if (!stopped) say(message, `Could not load the projects: ${error.message}`, "error");
    } finally {
      more.disabled = false;
      if (!stopped) timer = setTimeout(load, REFRESH_MS);
    }
  }
  more.addEventListener("click", () => {
    wanted += PAGE_SIZE;
    clearTimeout(timer);
    load();
  });
  load();
  const element = h(
    "section",
    { class: "card", "aria-labelledby": "projects-title" },
    h("h2", { id: "projects-title" }, "Your projects"),
    message,
    list,
    more,
  );
  return {
    element,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

function newProjectForm() {
  const nameId = uid("name");
  const name = h("input", {
    id: nameId,
    name: "name",
    required: true,
    maxlength: "200",
    autocomplete: "off",
  });
  const voice = voicePicker();
  const speed = speedField();
  const doc = documentInput();
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Create project");
  // If the project was created but its document refused, a second submit reuses that project.
  let created = null;

  const form = h(
    "form",
    { class: "stack", novalidate: true, "aria-labelledby": "new-title" },
    h("h2", { id: "new-title" }, "New project"),
    h("div", { class: "field" }, h("label", { for: nameId }, "Name"), name),
    h("div", { class: "row" }, voice.field, speed.field),
    doc.element,
    error,
    h("div", { class: "actions" }, submit),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error, "");
    if (!name.value.trim()) {
      say(error, "Give the project a name.", "error");
      name.focus();
      return;
    }
    const problem = doc.validate();
    if (problem) {
      say(error, problem, "error");
      doc.focusFirst();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Creating…";
    try {
      if (!created || created.name !== name.value.trim()) {
        const body = { name: name.value.trim(), speed: readSpeed(speed.input) };
        if (voice.select.value) body.voice = voice.select.value;
        created = await postJSON("v1/projects", body);
      }
      try {
        await doc.upload(created.id);
      } catch (refused) {
        // A refused document leaves no empty project behind.
        const made = created;
        created = null;
        await request(`v1/projects/${made.id}`, { method: "DELETE" }).catch(() => {});
        throw refused;
      }
      location.hash = `#/projects/${created.id}`;
    } catch (err) {
      say(error, `The document was refused, so no project was created: ${err.message}`, "error");
      doc.focusFirst();
    } finally {
      submit.disabled = false;
      submit.textContent = "Create project";
    }
  });
  return h("section", { class: "card" }, form);
}

function tryVoice() {
  const textId = uid("try-text");
  const text = h("textarea", {
    id: textId,
    name: "input",
    rows: "3",
    maxlength: "4096",
    required: true,
    text: "Hello! This is how I sound.",
  });
  const voice = voicePicker();
  const speed = speedField();
  const status = liveRegion();
  const player = h("div", { class: "player", hidden: true });
  const speak = h("button", { type: "submit", class: "btn btn-primary" }, "Speak");
  const save = h(
    "a",
    { class: "btn", href: "#", download: "voice-sample.wav", hidden: true },
    "Download the sample (WAV)",
  );

  const form = h(
    "form",
    { class: "stack", novalidate: true, "aria-labelledby": "try-title" },
    h("h2", { id: "try-title" }, "Try a voice"),
    h("div", { class: "field" }, h("label", { for: textId }, "Text to speak"), text),
    h("div", { class: "row" }, voice.field, speed.field),
    h("div", { class: "actions" }, speak, save),
    status,
    player,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!text.value.trim()) {
      say(status, "Type something to hear it.", "error");
      text.focus();
      return;
    }
    speak.disabled = true;
    save.hidden = true;
    const began = performance.now();
    const chars = text.value.length;
    const tick = () => {
      const seconds = Math.round((performance.now() - began) / 1000);
      say(status, `Synthesizing ${plural(chars, "character")}… ${seconds} s`);
    };
    tick();
    const ticking = setInterval(tick, 1000);
    try {
      const body = {
        input: text.value,
        response_format: "wav",
        speed: readSpeed(speed.input),
      };
      if (voice.select.value) body.voice = voice.select.value;
      clearPlayer(player);
      const audio = await playInto(player, "v1/audio/speech", "Voice sample", {
        method: "POST",
        json: body,
      });
      save.href = audio.src;
      save.hidden = false;
      say(status, "Ready: it plays below, or download it.", "ok");
    } catch (error) {
      say(status, error.message, "error");
    } finally {
      clearInterval(ticking);
      speak.disabled = false;
    }
  });
  return h("section", { class: "card" }, form);
}

/** Render the home page into `root`; returns a cleanup function. */
export function renderHome(root) {
  const projects = projectList();
  root.replaceChildren(
    h(
      "div",
      { class: "page-head" },
      h("h1", { tabindex: "-1" }, "Projects"),
      h("p", { class: "muted" }, "Turn documents into audio, listen, fix and download."),
    ),
    h(
      "div",
      { class: "home-grid" },
      h("div", { class: "home-main" }, projects.element),
      h("div", { class: "home-side" }, newProjectForm(), tryVoice()),
    ),
  );
  return () => projects.stop();
}
