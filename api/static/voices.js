// Voices: the list with a sample player per version, upload (with progress and the server's
// reason when a voice is refused), default version and roll-back, comparing two voices on one
// sentence, and choosing the voice of a project and of each chapter (#/projects/{id}/voices).

import { ApiError, authHeaders, errorMessage, getJSON, reportUnauthorized, request } from "./api.js";
import { button, focusHeading, h, liveRegion, say, uid } from "./dom.js";
import { playInto, revokeAll } from "./media.js";

const enc = encodeURIComponent;

function field(label, control, hint) {
  const id = control.id || uid("f");
  control.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    hint ? h("p", { class: "hint" }, hint) : null,
  );
}

function formatDate(iso) {
  try {
    return new Date(iso).toLocaleString();
  } catch {
    return iso;
  }
}

/** POST a FormData with upload progress (fetch cannot report it); resolves to the JSON body. */
function sendWithProgress(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.upload.onload = () => onProgress(1);
    xhr.onerror = () => reject(new ApiError(0, "Could not reach the Voxmill server."));
    xhr.onload = async () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(JSON.parse(xhr.responseText));
        return;
      }
      const message = await errorMessage(new Response(xhr.responseText, { status: xhr.status }));
      if (xhr.status === 401) reportUnauthorized(message);
      reject(new ApiError(xhr.status, message));
    };
    xhr.send(form);
  });
}

/** A <select> of voices (value: name) and one of the chosen voice's versions. */
function voiceAndVersion(voices, { inherit = null, voice = "", version = "" } = {}) {
  const voiceSelect = h(
    "select",
    { id: uid("voice") },
    inherit ? h("option", { value: "" }, inherit) : null,
    voices.map((v) => h("option", { value: v.name, selected: v.name === voice }, v.name)),
  );
  const versionSelect = h("select", { id: uid("version") });
  const fill = () => {
    const chosen = voices.find((v) => v.name === voiceSelect.value);
    const versions = chosen?.versions || [];
    versionSelect.replaceChildren(
      h("option", { value: "" }, versions.length ? "Default version" : "—"),
      ...versions.map((v) =>
        h("option", { value: v.version, selected: v.version === version }, `v${v.version}`),
      ),
    );
    versionSelect.disabled = versions.length === 0;
  };
  voiceSelect.addEventListener("change", () => {
    version = "";
    fill();
  });
  fill();
  return { voiceSelect, versionSelect };
}

class VoicesPage {
  constructor(root) {
    this.root = root;
    this.voices = [];
  }

  async start() {
    this.root.replaceChildren(h("p", { class: "muted" }, "Loading voices…"));
    try {
      this.voices = await getJSON("v1/voices");
    } catch (error) {
      this.root.replaceChildren(
        h("div", { class: "card" }, h("h1", { tabindex: "-1" }, "Voices"), h("p", { class: "error" }, error.message)),
      );
      focusHeading(this.root);
      return;
    }
    this.list = h("div", { class: "voice-list stack" });
    this.status = liveRegion();
    this.status.hidden = true;
    this.root.replaceChildren(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/" }, "← Projects")),
      h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Voices")),
      this.status,
      h("section", { class: "card", "aria-labelledby": "voices-title" }, h("h2", { id: "voices-title" }, "Installed voices"), this.list),
      this.compareCard(),
      this.uploadCard(),
    );
    this.renderList();
    focusHeading(this.root);
  }

  async reload() {
    this.voices = await getJSON("v1/voices");
    this.renderList();
    this.fillCompare();
  }

  renderList() {
    this.list.replaceChildren(...this.voices.map((voice) => this.voiceItem(voice)));
  }

  voiceItem(voice) {
    const about = [voice.language, voice.gender, voice.builtin ? "built in" : `pool ${voice.pool}`]
      .filter(Boolean)
      .join(" · ");
    const player = h("div", { class: "player-slot", hidden: true });
    const versions = (voice.versions || []).map((v) => {
      const play = button(`Play sample v${v.version}`, async () => {
        play.disabled = true;
        try {
          await playInto(player, v.sample_url.replace(/^\//, ""), `${voice.name} v${v.version} sample`);
        } catch (error) {
          say(this.status, error.message, "error");
        } finally {
          play.disabled = false;
        }
      }, "btn btn-small play-sample");
      const makeDefault = v.is_default
        ? h("span", { class: "badge badge-done" }, "default")
        : button("Make default", () => this.change(`v1/voices/${enc(voice.name)}/default`, "PUT", { version: v.version }, `${voice.name} now speaks with v${v.version}.`), "btn btn-small btn-quiet");
      return h(
        "li",
        { class: "voice-version", dataset: { version: v.version } },
        h("strong", {}, `v${v.version}`),
        " ",
        h("span", { class: "muted" }, `${v.family}, ${v.sample_rate} Hz, uploaded ${formatDate(v.created_at)} by ${v.created_by}`),
        " ",
        play,
        " ",
        makeDefault,
      );
    });
    const rollback =
      voice.versions && voice.versions.length > 1
        ? button("Roll back", () => this.change(`v1/voices/${enc(voice.name)}/rollback`, "POST", {}, `${voice.name} rolled back.`), "btn btn-small btn-warn")
        : null;
    return h(
      "article",
      { class: "voice-item", dataset: { voice: voice.name } },
      h("h3", {}, voice.name, voice.default ? h("span", { class: "muted" }, " (server default)") : null),
      h("p", { class: "muted" }, about, voice.description ? ` — ${voice.description}` : ""),
      versions.length ? h("ul", { class: "voice-versions" }, versions) : null,
      rollback,
      player,
    );
  }

  async change(path, method, json, done) {
    say(this.status, "Working…");
    try {
      await request(path, { method, json });
      await this.reload();
      say(this.status, done, "ok");
    } catch (error) {
      say(this.status, error.message, "error");
    }
  }

  compareCard() {
    this.compareText = h("input", { id: uid("cmp"), type: "text", value: "The quick brown fox jumps over the lazy dog." });
    this.compareA = h("div", { class: "compare-side" });
    this.compareB = h("div", { class: "compare-side" });
    this.compareStatus = liveRegion();
    this.compareStatus.hidden = true;
    const run = button("Compare", () => this.compare(), "btn btn-primary");
    const card = h(
      "section",
      { class: "card", "aria-labelledby": "compare-title" },
      h("h2", { id: "compare-title" }, "Compare two voices"),
      field("Sentence", this.compareText),
      h("div", { class: "row compare-row" }, this.compareA, this.compareB),
      run,
      this.compareStatus,
    );
    this.fillCompare();
    return card;
  }

  fillCompare() {
    for (const [slot, index] of [[this.compareA, 0], [this.compareB, 1]]) {
      const pick = voiceAndVersion(this.voices, { voice: this.voices[Math.min(index, this.voices.length - 1)]?.name });
      const player = h("div", { class: "player-slot", hidden: true });
      slot.replaceChildren(field(`Voice ${index ? "B" : "A"}`, pick.voiceSelect), field("Version", pick.versionSelect), player);
      slot.pick = pick;
      slot.player = player;
    }
  }

  async compare() {
    say(this.compareStatus, "Synthesizing…");
    try {
      for (const slot of [this.compareA, this.compareB]) {
        const { voiceSelect, versionSelect } = slot.pick;
        const body = { text: this.compareText.value };
        if (versionSelect.value) body.version = versionSelect.value;
        await playInto(slot.player, `v1/voices/${enc(voiceSelect.value)}/preview`, `${voiceSelect.value} saying the sentence`, { method: "POST", json: body });
      }
      say(this.compareStatus, "");
    } catch (error) {
      say(this.compareStatus, error.message, "error");
    }
  }

  uploadCard() {
    const name = h("input", { name: "name", required: true, pattern: "[a-z0-9][a-z0-9_\\-]{0,62}", autocomplete: "off" });
    const language = h("input", { name: "language", required: true, value: "en-US" });
    const gender = h("input", { name: "gender" });
    const description = h("input", { name: "description" });
    const sample = h("input", { name: "sample_text", required: true, value: "Hello, this is my new voice." });
    const pool = h("select", { name: "pool" }, h("option", { value: "cpu" }, "CPU pool"), h("option", { value: "gpu" }, "GPU pool"));
    const model = h("input", { name: "model", type: "file", accept: ".onnx" });
    const config = h("input", { name: "config", type: "file", accept: ".json" });
    const archive = h("input", { name: "archive", type: "file", accept: ".zip,.tar,.tar.gz,.tgz" });
    const makeDefault = h("input", { name: "make_default", type: "checkbox", value: "true" });
    const progress = h("progress", { max: "100", value: "0", hidden: true, "aria-label": "Upload progress" });
    const status = h("p", { class: "status-line upload-status", role: "alert", hidden: true });
    const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Upload voice");
    const form = h(
      "form",
      { class: "stack voice-upload", novalidate: true },
      field("Name", name, "Lowercase letters, digits, - and _. An existing name gets a new version."),
      field("Language", language),
      field("Gender", gender),
      field("Description", description),
      field("Sample text", sample, "The voice must speak this before it is accepted."),
      field("Pool", pool),
      h("fieldset", {}, h("legend", {}, "Piper voice"), field("Model (.onnx)", model), field("Config (.onnx.json)", config)),
      h("fieldset", {}, h("legend", {}, "…or a transformers VITS voice"), field("save_pretrained folder as .zip or .tar.gz", archive)),
      h("label", { class: "check" }, makeDefault, " Make this version the default"),
      submit,
      progress,
      status,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!name.value || !language.value || !sample.value) {
        say(status, "Give the voice a name, a language and a sample text.", "error");
        return;
      }
      if (!archive.files.length && !(model.files.length && config.files.length)) {
        say(status, "Choose the Piper .onnx and .onnx.json files, or a transformers archive.", "error");
        return;
      }
      const body = new FormData();
      for (const input of [name, language, gender, description, sample, pool]) body.append(input.name, input.value);
      if (makeDefault.checked) body.append("make_default", "true");
      if (archive.files.length) body.append("archive", archive.files[0]);
      else {
        body.append("model", model.files[0]);
        body.append("config", config.files[0]);
      }
      submit.disabled = true;
      progress.hidden = false;
      progress.value = 0;
      say(status, "Uploading…");
      try {
        const voice = await sendWithProgress("v1/voices", body, (fraction) => {
          progress.value = Math.round(fraction * 100);
          if (fraction >= 1) say(status, "Uploaded; checking that the voice speaks…");
        });
        await this.reload();
        say(status, `Voice ${voice.name} v${voice.versions.at(-1).version} is ready.`, "ok");
        form.reset();
      } catch (error) {
        say(status, `The voice was not accepted: ${error.message}`, "error");
      } finally {
        submit.disabled = false;
        progress.hidden = true;
      }
    });
    return h(
      "section",
      { class: "card", "aria-labelledby": "upload-title" },
      h("h2", { id: "upload-title" }, "Upload a voice"),
      h("p", { class: "muted" }, "Needs an admin API key. The voice is tried before it is accepted."),
      form,
    );
  }
}

class ProjectVoicesPage {
  constructor(root, projectId) {
    this.root = root;
    this.projectId = projectId;
  }

  async start() {
    this.root.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    let project;
    let voices;
    try {
      [project, voices] = await Promise.all([getJSON(`v1/projects/${this.projectId}`), getJSON("v1/voices")]);
    } catch (error) {
      this.root.replaceChildren(h("div", { class: "card" }, h("h1", { tabindex: "-1" }, "Voices"), h("p", { class: "error" }, error.message)));
      focusHeading(this.root);
      return;
    }
    this.status = liveRegion();
    this.status.hidden = true;
    const rows = [
      this.row("Whole project", `v1/projects/${project.id}/voice`, voices, { voice: project.voice, version: project.voice_version }),
      ...project.chapters.map((c) =>
        this.row(`Chapter ${c.position + 1}: ${c.title}`, `v1/chapters/${c.id}/voice`, voices, {
          voice: c.voice || "",
          version: c.voice_version || "",
          inherit: "The project's voice",
        }),
      ),
    ];
    this.root.replaceChildren(
      h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: `#/projects/${project.id}` }, `← ${project.name}`)),
      h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, `Voices of ${project.name}`)),
      h("p", { class: "muted" }, "Applies to sentences converted or re-synthesized from now on. A re-synthesized sentence keeps the version that spoke it unless you pin another here."),
      this.status,
      h("section", { class: "card stack project-voices" }, rows),
    );
    focusHeading(this.root);
  }

  row(label, path, voices, { voice = "", version = "", inherit = null }) {
    const pick = voiceAndVersion(voices, { voice, version, inherit });
    const save = button("Save", async () => {
      save.disabled = true;
      try {
        const body = { voice: pick.voiceSelect.value || null, version: pick.versionSelect.value || null };
        await request(path, { method: "PUT", json: body });
        say(this.status, `${label}: ${body.voice || "inherits"}${body.version ? ` v${body.version}` : ""}.`, "ok");
      } catch (error) {
        say(this.status, error.message, "error");
      } finally {
        save.disabled = false;
      }
    }, "btn btn-small");
    return h(
      "div",
      { class: "row voice-choice", dataset: { path } },
      h("strong", { class: "voice-choice-label" }, label),
      field("Voice", pick.voiceSelect),
      field("Version", pick.versionSelect),
      save,
    );
  }
}

/** Render #/voices into `root`; returns a cleanup function. */
export function renderVoices(root) {
  new VoicesPage(root).start();
  return () => revokeAll();
}

/** Render #/projects/{id}/voices into `root`; returns a cleanup function. */
export function renderProjectVoices(root, projectId) {
  new ProjectVoicesPage(root, projectId).start();
  return () => revokeAll();
}
