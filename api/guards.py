"""Bounds on what one request, and one client, may hold of the API process.

:class:`RequestGuard` is one ASGI middleware doing two things before a route runs:

- **Body size, while streaming.** Every request body is counted as it arrives (Starlette's
  ``RequestBodyLimitResponder``) and refused with 413 past its route's limit: a document upload
  ``max_upload_bytes``, a voice upload ``max_voice_upload_bytes``, a lexicon import the
  document limit, a cover image ``MAX_COVER_BYTES``, anything else ``MAX_JSON_BODY_BYTES``. A
  ``Content-Length`` above it is refused before anything is read.
- **Per-client limits on expensive routes** (document and voice uploads, speech, conversions,
  re-synthesis, voice previews): at most ``client_concurrency`` at once and
  ``client_rate_per_minute`` per minute (a moving window, the ``limits`` library); above either,
  429 with ``Retry-After``. A client is its API key, else its address.

Both refusals are in the error shape of their path (:func:`api.openai_compat.error_body`):
``{"detail": ...}``, with OpenAI's ``error`` object too under ``/v1/audio/``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.middleware.body_limit import RequestBodyLimitResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.openai_compat import error_body
from contract import limits
from contract.settings import Settings

# Framing around an upload's bytes (multipart boundaries and headers, JSON quoting).
_SLACK = 64 * 1024

_DOCUMENTS = re.compile(r"^/v1/projects/[^/]+/documents$")
_LEXICON_IMPORT = re.compile(r"^/v1/projects/[^/]+/lexicon/import$")
_VOICE_UPLOAD = re.compile(r"^/v1/voices/?$")
_JOBS = re.compile(r"^/v1/jobs/?$")  # a document upload or inline text, as a document upload
_COVER = re.compile(r"^/v1/projects/[^/]+/cover$")
_EXPENSIVE = (
    _DOCUMENTS,
    _JOBS,
    _VOICE_UPLOAD,
    re.compile(r"^/v1/audio/speech$"),
    re.compile(r"^/v1/projects/[^/]+/conversions$"),
    re.compile(r"^/v1/segments/[^/]+/resynthesize$"),
    re.compile(r"^/v1/voices/[^/]+/preview$"),
)


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The most bytes a request body to ``method path`` may have."""
    if method == "POST" and (
        _DOCUMENTS.match(path) or _LEXICON_IMPORT.match(path) or _JOBS.match(path)
    ):
        return settings.max_upload_bytes + _SLACK
    if method == "POST" and _VOICE_UPLOAD.match(path):
        return settings.max_voice_upload_bytes + _SLACK
    if method == "PUT" and _COVER.match(path):
        # The route names its own limit (the image's bytes are the whole body).
        return limits.MAX_COVER_BYTES + _SLACK
    return limits.MAX_JSON_BODY_BYTES


def is_expensive(method: str, path: str) -> bool:
    """Whether ``method path`` is limited per client."""
    return method == "POST" and any(p.match(path) for p in _EXPENSIVE)


class ClientLimiter:
    """Per-client concurrency and rate of expensive requests, in this process.

    Args:
        concurrency: Requests one client may have running at once (0: unlimited).
        per_minute: Requests one client may start per minute (0: unlimited).
        clock: Seconds since the epoch (the ``limits`` library's clock; for ``Retry-After``).
    """

    def __init__(
        self, concurrency: int, per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.concurrency = concurrency
        self._rate = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._clock = clock

    def acquire(self, client: str) -> int | None:
        """Start a request of ``client``: ``None`` when allowed (call :meth:`release` after it),
        else the seconds to wait before trying again."""
        with self._lock:
            if self.concurrency and self._running[client] >= self.concurrency:
                return 1
            if self._rate is not None and not self._limiter.hit(self._rate, client):
                reset, _remaining = self._limiter.get_window_stats(self._rate, client)
                return max(1, math.ceil(reset - self._clock()))
            self._running[client] += 1
            return None

    def release(self, client: str) -> None:
        """A request of ``client`` started by :meth:`acquire` is over."""
        with self._lock:
            self._running[client] -= 1
            if self._running[client] <= 0:
                del self._running[client]


def client_of(scope: Scope) -> str:
    """Who sent a request: a digest of its bearer key, else its address."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return "key:" + hashlib.sha256(value).hexdigest()[:16]
    client = scope.get("client")
    return f"addr:{client[0]}" if client else "addr:unknown"


class RequestGuard:
    """The ASGI middleware described in the module docstring.

    Args:
        app: The wrapped app.
        settings: The limits (``max_upload_bytes``, ``max_voice_upload_bytes``,
            ``client_concurrency``, ``client_rate_per_minute``).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.clients = ClientLimiter(settings.client_concurrency, settings.client_rate_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        most = body_limit(self.settings, method, path)
        limited = RequestBodyLimitResponder(self.app, most)
        send = _json_413(send, most, path, over=lambda: _over(limited))
        if not is_expensive(method, path):
            await limited(scope, receive, send)
            return
        client = client_of(scope)
        wait = self.clients.acquire(client)
        if wait is not None:
            await _too_many(send, wait, path)
            return
        try:
            await limited(scope, receive, send)
        finally:
            self.clients.release(client)


def _over(limited: RequestBodyLimitResponder) -> bool:
    """Whether ``limited`` refused its request's body (it saw, or was told of, too many bytes)."""
    most = limited.max_body_size
    return limited.total_size > most or (limited.content_length or 0) > most


def _json_413(send: Send, most: int, path: str, *, over: Callable[[], bool]) -> Send:
    """``send`` with the 413 of Starlette's body-limit responder (plain text, or made by the
    app's error handler when the route was reading the body) replaced by the API's error shape
    for ``path`` naming the limit; a route's own 413 (``over()`` false) and every other answer
    pass unchanged."""
    replaced = False

    async def wrapped(message: Message) -> None:
        nonlocal replaced
        if replaced:  # the rest of the answer replaced
            return
        if message["type"] != "http.response.start" or message["status"] != 413 or not over():
            await send(message)
            return
        replaced = True
        text = (
            f"the request body is over this route's limit of "
            f"{most / 1_000_000:.1f} MB ({most:,} bytes); send less, or split it"
        )
        body = json.dumps(error_body(path, 413, text)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return wrapped


async def _too_many(send: Send, retry_after: int, path: str) -> None:
    message = (
        "too many requests from this client at once or in the last minute; "
        f"retry after {retry_after} s"
    )
    body = json.dumps(error_body(path, 429, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
