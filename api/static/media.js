// Audio and downloads without the API key in any URL: fetch with the header, then play or save
// the Blob through a blob: object URL (revoked when it is no longer needed).

import { getBlob } from "./api.js";
import { h } from "./dom.js";

export const FORMATS = [
  ["wav", "WAV"],
  ["flac", "FLAC"],
  ["mp3", "MP3"],
  ["ogg", "OGG"],
];

const liveUrls = new Set();

function objectUrl(blob) {
  const url = URL.createObjectURL(blob);
  liveUrls.add(url);
  return url;
}

function revoke(url) {
  if (url && liveUrls.delete(url)) URL.revokeObjectURL(url);
}

/** Revoke every object URL still held (when leaving a page). */
export function revokeAll() {
  for (const url of liveUrls) URL.revokeObjectURL(url);
  liveUrls.clear();
}

/**
 * Fetch audio from `path` (request `options` as for api.request) and show it in `slot` as a
 * playing <audio controls>, replacing what was there. Resolves to the <audio>; throws ApiError.
 */
export async function playInto(slot, path, label, options) {
  const { blob } = await getBlob(path, options);
  const old = slot.querySelector("audio");
  if (old) {
    old.pause();
    revoke(old.dataset.url);
  }
  const url = objectUrl(blob);
  const audio = h("audio", { controls: true, preload: "auto", "aria-label": label, src: url });
  audio.dataset.url = url;
  slot.replaceChildren(audio);
  slot.hidden = false;
  // Playback may be refused (autoplay policy, no audio device); the controls still work.
  audio.play().catch(() => {});
  return audio;
}

/** Remove the player from `slot`, releasing its audio. */
export function clearPlayer(slot) {
  const old = slot.querySelector("audio");
  if (old) {
    old.pause();
    revoke(old.dataset.url);
  }
  slot.replaceChildren();
  slot.hidden = true;
}

/** Fetch `path` and save it as a download under the server's file name (or `fallback`). */
export async function download(path, fallback) {
  const { blob, filename } = await getBlob(path);
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename || fallback, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // Revoking at once can cancel the save in some browsers; a minute is plenty.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return filename || fallback;
}

/** A labelled <select> of the audio formats; returns {field, select}. */
export function formatPicker(id, label = "Format") {
  const select = h(
    "select",
    { id, name: "format" },
    FORMATS.map(([value, text]) => h("option", { value }, text)),
  );
  const field = h("div", { class: "field field-inline" }, h("label", { for: id }, label), select);
  return { field, select };
}
