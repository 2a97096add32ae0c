// The one player of a project page: a sentence, a chapter, or the project from any sentence on,
// sentence by sentence through one <audio> element, so starting anything stops what was playing.
// The sentence being heard is highlighted and scrolled into view; a sentence still being
// synthesized is waited for, so listening can start while the conversion runs.
//
// Keyboard (anywhere on the page but in a text field): K play/pause, J previous sentence,
// L next sentence.

import { getBlob } from "./api.js";
import { button, excerpt, h, say } from "./dom.js";
import { takeKey } from "./proofing.js";

// Sentences fetched ahead of the one playing, so the next one starts without a gap.
const PREFETCH = 1;

/**
 * A queue entry is a SentenceRow of chapter.js: it has `segment` ({id, status, attempts, text}),
 * `number`, `chapter` (with `title.textContent`), `element`, `whenSettled()` (resolves when it is
 * no longer queued) and `setPlaying(on)`.
 */
export class Player {
  constructor() {
    this.audio = h("audio", { preload: "auto", "aria-hidden": "true" });
    this.audio.addEventListener("ended", () => this.step(1, true));
    this.audio.addEventListener("play", () => this.renderButton());
    this.audio.addEventListener("pause", () => this.renderButton());
    this.queue = [];
    this.index = -1;
    this.current = null;
    this.cache = new Map(); // segment id + attempts -> blob URL
    this.run = 0; // bumped on every new start: late fetches of an older start are ignored
    this.nowText = h("p", { class: "now-playing", "aria-live": "polite" }, "Nothing playing.");
    this.toggleButton = button("Play", () => this.toggle(), "btn btn-primary player-main");
    this.toggleButton.setAttribute("aria-keyshortcuts", "K");
    this.prevButton = button("Previous sentence", () => this.step(-1), "btn");
    this.prevButton.setAttribute("aria-keyshortcuts", "J");
    this.nextButton = button("Next sentence", () => this.step(1), "btn");
    this.nextButton.setAttribute("aria-keyshortcuts", "L");
    this.element = h(
      "section",
      { class: "player-bar card", "aria-label": "Player" },
      h("div", { class: "player-row" }, this.prevButton, this.toggleButton, this.nextButton),
      this.nowText,
      h("p", { class: "muted player-keys" }, "Keys: K play or pause · J previous · L next"),
      this.audio,
    );
    this.onKey = (event) => this.key(event);
    document.addEventListener("keydown", this.onKey);
    this.renderButton();
  }

  /** Play `rows` in order from `start` (an index into rows). Stops whatever was playing. */
  play(rows, start = 0) {
    this.stopAudio();
    this.queue = rows;
    this.index = start - 1;
    this.step(1, true);
  }

  /** Stop and forget the queue (leaving the page). */
  close() {
    this.stopAudio();
    document.removeEventListener("keydown", this.onKey);
    for (const url of this.cache.values()) URL.revokeObjectURL(url);
    this.cache.clear();
  }

  stopAudio() {
    this.run += 1;
    this.audio.pause();
    this.current?.setPlaying(false);
    this.current = null;
  }

  get playing() {
    return !this.audio.paused && !this.audio.ended;
  }

  toggle() {
    if (this.playing) {
      this.audio.pause();
    } else if (this.current && this.audio.src) {
      this.audio.play().catch(() => {});
    } else if (this.queue.length) {
      this.play(this.queue, Math.max(this.index, 0));
    }
  }

  /**
   * Move by `delta` sentences. `auto`: the previous one ended (sentences without audio that
   * nothing will synthesize are skipped then).
   */
  async step(delta, auto = false) {
    if (!this.queue.length) return;
    let next = this.index + delta;
    if (next < 0) next = 0;
    if (next >= this.queue.length) {
      this.stopAudio();
      this.index = this.queue.length - 1;
      say(this.nowText, "Finished playing.");
      this.renderButton();
      return;
    }
    this.stopAudio();
    const run = this.run;
    this.index = next;
    const row = this.queue[next];
    this.current = row;
    row.setPlaying(true);
    this.renderNow(row, "play");
    if (row.segment.status === "queued") {
      this.renderNow(row, "wait");
      await row.whenSettled();
      if (run !== this.run) return;
    }
    if (row.segment.status !== "done") {
      // Not converted or failed: no audio will come; go on with the next sentence.
      this.step(1, true);
      return;
    }
    let url;
    try {
      url = await this.urlOf(row);
    } catch (error) {
      if (run !== this.run) return;
      this.renderNow(row, "error", error.message);
      return;
    }
    if (run !== this.run) return;
    this.audio.src = url;
    this.renderNow(row, "play");
    this.audio.play().catch(() => this.renderButton());
    this.prefetch(next + 1);
  }

  async urlOf(row) {
    const s = row.segment;
    const key = `${s.id}:${takeKey(s)}`;
    let url = this.cache.get(key);
    if (!url) {
      const { blob } = await getBlob(`v1/segments/${s.id}/audio?format=wav&v=${takeKey(s)}`);
      url = URL.createObjectURL(blob);
      this.cache.set(key, url);
    }
    return url;
  }

  prefetch(from) {
    for (const row of this.queue.slice(from, from + PREFETCH)) {
      if (row.segment.status === "done") this.urlOf(row).catch(() => {});
    }
  }

  renderNow(row, what, detail = "") {
    const where = `sentence ${row.number} of “${row.chapter.title.textContent}”`;
    this.nowText.textContent =
      what === "wait"
        ? `Waiting for ${where} to be synthesized…`
        : what === "error"
          ? `Could not play ${where}: ${detail}`
          : `Now playing ${where}: ${excerpt(row.segment.text, 10)}`;
    this.renderButton();
  }

  renderButton() {
    const playing = this.playing;
    this.toggleButton.textContent = playing ? "Pause" : "Play";
    this.toggleButton.disabled = !this.queue.length;
    this.prevButton.disabled = this.index <= 0;
    this.nextButton.disabled = !this.queue.length || this.index >= this.queue.length - 1;
    this.element.dataset.state = playing ? "playing" : "paused";
  }

  key(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (target?.closest?.("input, textarea, select, [contenteditable=''], [contenteditable=true]")) {
      return;
    }
    if (document.querySelector("dialog[open]")) return;
    const key = event.key.toLowerCase();
    if (key === "k") this.toggle();
    else if (key === "j") this.step(-1);
    else if (key === "l") this.step(1);
    else return;
    event.preventDefault();
  }
}
