// Server-sent events over fetch(): EventSource cannot send an Authorization header, and the API
// key must never travel in a URL. This reads `text/event-stream` from a ReadableStream, parses it
// (https://html.spec.whatwg.org/multipage/server-sent-events.html) and reconnects with back-off.

import { authHeaders, errorMessage, reportUnauthorized } from "./api.js";

/** Incremental text/event-stream parser: push() text, get the complete events back. */
export class EventParser {
  constructor() {
    this.buffer = "";
    this.pendingCR = false;
    this.reset();
    this.retryMs = null;
  }

  reset() {
    this.type = "";
    this.data = [];
  }

  push(text) {
    if (!text) return [];
    // Lines end with \r\n, \n or \r. A chunk that ends with \r has ended its line; if the next
    // chunk starts with \n, that \n is the second half of the same \r\n.
    if (this.pendingCR && text.startsWith("\n")) text = text.slice(1);
    this.pendingCR = text.endsWith("\r");
    this.buffer += text;
    const events = [];
    const lines = this.buffer.split(/\r\n|\r|\n/);
    this.buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (this.data.length) {
          events.push({ type: this.type || "message", data: this.data.join("\n") });
        }
        this.reset();
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: keep-alive
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.type = value;
      else if (field === "data") this.data.push(value);
      else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    }
    return events;
  }
}

const MIN_DELAY_MS = 1000;
const MAX_DELAY_MS = 15000;

/**
 * A live event stream for one URL.
 * onEvent({type, data}) gets each event with `data` parsed as JSON;
 * onState("connecting" | "live" | "reconnecting" | "closed", message) reports the connection;
 * onFatal(status, message) is called, and the stream stops, on 401 / 404 (a 401 also goes to
 * the API key prompt).
 */
export class LiveStream {
  constructor(url, { onEvent, onState = () => {}, onFatal = () => {} }) {
    this.url = url;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onFatal = onFatal;
    this.controller = null;
    this.stopped = false;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this.run(MIN_DELAY_MS);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller?.abort();
    this.onState("closed", "");
  }

  async run(delay) {
    if (this.stopped) return;
    this.controller = new AbortController();
    this.onState(delay === MIN_DELAY_MS ? "connecting" : "reconnecting", "");
    let gotEvents = false;
    let problem = "";
    const parser = new EventParser();
    try {
      const response = await fetch(this.url, {
        headers: authHeaders({ Accept: "text/event-stream" }),
        cache: "no-store",
        signal: this.controller.signal,
      });
      if (!response.ok) {
        const message = await errorMessage(response);
        if (response.status === 401 || response.status === 404) {
          this.stopped = true;
          this.onState("closed", message);
          this.onFatal(response.status, message);
          if (response.status === 401) reportUnauthorized(message);
          return;
        }
        throw new Error(message);
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      this.onState("live", "");
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of parser.push(value)) {
          gotEvents = true;
          let data;
          try {
            data = JSON.parse(event.data);
          } catch {
            data = event.data;
          }
          this.onEvent({ type: event.type, data });
        }
      }
      problem = "the server closed the live connection";
    } catch (error) {
      if (this.stopped || error?.name === "AbortError") return;
      // fetch() rejects with a TypeError ("Failed to fetch") when the network or server is down.
      problem =
        error instanceof TypeError
          ? "the server could not be reached"
          : error?.message || "the live connection failed";
    }
    if (this.stopped) return;
    // A stream that delivered events was healthy: start the back-off over.
    const next = gotEvents ? MIN_DELAY_MS : Math.min(delay * 2, MAX_DELAY_MS);
    const wait = parser.retryMs ?? (gotEvents ? MIN_DELAY_MS : delay);
    this.onState("reconnecting", problem);
    this.timer = setTimeout(() => this.run(next), wait);
  }
}
