// The /v1 client: every request carries the API key in the Authorization header (never in a
// URL), and every failure becomes an ApiError whose message is readable (the server's `detail`).

const KEY_NAME = "voxmill.apiKey";

/** A failed request: `status` is the HTTP status (0 when the server could not be reached). */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** Where the API key lives: sessionStorage by default, localStorage when remembered. */
export const apiKey = {
  get() {
    return sessionStorage.getItem(KEY_NAME) || localStorage.getItem(KEY_NAME) || "";
  },
  set(key, remember) {
    this.clear();
    (remember ? localStorage : sessionStorage).setItem(KEY_NAME, key);
  },
  clear() {
    sessionStorage.removeItem(KEY_NAME);
    localStorage.removeItem(KEY_NAME);
  },
};

let unauthorizedHandler = null;

/** Called with the server's message whenever a request is refused with 401. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** Report a 401 seen outside request() (the live event stream). */
export function reportUnauthorized(message) {
  unauthorizedHandler?.(message);
}

/** Headers for a request, with the key when one is set (or the one given). */
export function authHeaders(extra = {}, key = apiKey.get()) {
  const headers = { ...extra };
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

const STATUS_TEXT = {
  401: "the server needs a valid API key",
  403: "this API key may not do that",
  404: "not found",
  409: "that cannot be done right now",
  413: "the upload is too large",
  415: "the server does not accept this kind of upload",
  422: "the server could not accept this request",
  429: "too many requests; wait a moment and try again",
  500: "the server hit an internal error",
  502: "the server is unreachable behind its proxy",
  503: "the server is busy or not ready; try again shortly",
  504: "the server took too long to answer",
};

/** A readable message for a failed response: the JSON `detail` when there is one. */
export async function errorMessage(response) {
  let detail = "";
  try {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      if (Array.isArray(body?.errors) && body.errors.length) detail = validationText(body.errors);
      else if (typeof body?.detail === "string") detail = body.detail;
      else if (Array.isArray(body?.detail)) detail = validationText(body.detail);
    } catch {
      // Not JSON: a short plain-text body is worth showing, an HTML error page is not.
      if (text && text.length < 300 && !text.trimStart().startsWith("<")) detail = text.trim();
    }
  } catch {
    // the body could not be read; fall back to the status
  }
  if (!detail) detail = STATUS_TEXT[response.status] || `request failed (HTTP ${response.status})`;
  return sentence(detail);
}

// What the fields of request bodies are called on the pages.
const FIELD_WORDS = {
  text: "the text",
  name: "the name",
  speed: "the speed",
  spoken_text: "the words to say",
  grapheme: "the word",
  alias: "the pronunciation",
  phoneme: "the pronunciation",
  input: "the text",
  format: "the format",
  voice: "the voice",
  version: "the voice version",
};

/**
 * Validation errors (FastAPI/pydantic `errors`: {loc, type, msg, ctx, input}) in the page's
 * words: "The text is too long: at most 2,000 characters (it has 2,345)." instead of the raw
 * "text: String should have at most 2000 characters".
 */
export function validationText(errors) {
  return errors
    .slice(0, 3)
    .map((e) => {
      const loc = Array.isArray(e?.loc) ? e.loc.filter((p) => typeof p === "string") : [];
      const key = loc.filter((p) => p !== "body").pop() || "";
      const field = FIELD_WORDS[key] || (key ? `the ${key.replaceAll("_", " ")}` : "the request");
      // The limit: from `ctx` when the server sends it, else from the message's number.
      const found = /(-?\d+(?:\.\d+)?)/.exec(String(e?.msg || ""))?.[1];
      const ctx = { max_length: found, min_length: found, le: found, lt: found, ge: found, gt: found, ...(e?.ctx || {}) };
      const number = (n) => Number(n).toLocaleString("en");
      switch (e?.type) {
        case "string_too_long": {
          const has = typeof e.input === "string" ? ` (it has ${number(e.input.length)})` : "";
          return `${field} is too long: at most ${number(ctx.max_length)} characters${has}`;
        }
        case "string_too_short":
          return ctx.min_length > 1
            ? `${field} is too short: at least ${number(ctx.min_length)} characters`
            : `${field} is empty; type something`;
        case "missing":
          return `${field} is missing`;
        case "less_than_equal":
        case "less_than":
          return `${field} must be at most ${ctx.le ?? ctx.lt}`;
        case "greater_than_equal":
        case "greater_than":
          return `${field} must be at least ${ctx.ge ?? ctx.gt}`;
        case "literal_error":
        case "enum":
          return `${field} must be one of ${ctx.expected}`;
        default:
          return `${field} is not valid`;
      }
    })
    .join("; ");
}

/** "the file is empty" → "The file is empty." */
function sentence(text) {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?…)]$/.test(capital) ? capital : `${capital}.`;
}

const UNREACHABLE =
  "Could not reach the Voxmill server. Check that it is running and your network, then try again.";

/**
 * fetch() a /v1 path (relative to the page, so a path prefix keeps working).
 * Resolves to the Response when it is OK; throws ApiError otherwise.
 */
export async function request(path, { method = "GET", json, body, headers = {}, signal } = {}) {
  const init = { method, signal, cache: "no-store", headers: authHeaders(headers) };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error?.name === "AbortError") throw error;
    throw new ApiError(0, UNREACHABLE);
  }
  if (response.ok) return response;
  const message = await errorMessage(response);
  if (response.status === 401) reportUnauthorized(message);
  throw new ApiError(response.status, message);
}

/** GET (or send) and parse JSON. */
export async function getJSON(path, options) {
  const response = await request(path, options);
  return response.json();
}

export function postJSON(path, json, options = {}) {
  return getJSON(path, { ...options, method: "POST", json });
}

/** Fetch audio (or any file) as a Blob, with the filename the server suggests. */
export async function getBlob(path, options) {
  const response = await request(path, options);
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="?([^";]+)"?/i.exec(disposition);
  return { blob: await response.blob(), filename: match ? match[1] : "" };
}

/**
 * Try a key (or no key) without storing it: resolves to {status, message}, where status is the
 * HTTP status (0: unreachable) and message is "" when the key works.
 */
export async function checkKey(key) {
  let response;
  try {
    response = await fetch("v1/projects?limit=1", {
      headers: authHeaders({}, key),
      cache: "no-store",
    });
  } catch {
    return { status: 0, message: UNREACHABLE };
  }
  if (response.ok) return { status: response.status, message: "" };
  let message = await errorMessage(response);
  if (response.status === 401 && key) {
    const reason = message.charAt(0).toLowerCase() + message.slice(1).replace(/\.$/, "");
    message = `The server refused this key (${reason}). Check the key and try again.`;
  }
  return { status: response.status, message };
}
