"""What makes ``/v1/audio/*`` a drop-in for OpenAI's audio API: its voice names, its error shape.

**Voice aliases.** Clients written for OpenAI send one of OpenAI's voice names (``alloy``,
``echo``...). Each maps to a configured voice: ``VOXMILL_VOICE_ALIASES`` (a JSON object, e.g.
``{"nova": "kim"}``) names some, and every other OpenAI name means the default voice
(``VOXMILL_DEFAULT_VOICE``). A served voice that happens to bear an OpenAI name is shadowed, so
do not name voices after them. The table is in the README ("OpenAI compatibility").

**Errors.** OpenAI's SDKs read ``{"error": {"message", "type", "param", "code"}}`` and raise
their own exception per status (``BadRequestError`` 400, ``AuthenticationError`` 401,
``NotFoundError`` 404, ``UnprocessableEntityError`` 422, ``RateLimitError`` 429,
``InternalServerError`` 5xx). Every error of a ``/v1/audio/`` route carries that object next to
Voxmill's own ``detail`` (which Voxmill's clients read), so both kinds of client get their message.
The shape is OpenAI's API reference ("Error codes"); ``type`` uses its names
(``invalid_request_error``, ``authentication_error``, ``not_found_error``, ``server_error``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from contract.settings import Settings

# OpenAI's text-to-speech voices (its API reference, ``CreateSpeechRequest.voice``).
OPENAI_VOICES: tuple[str, ...] = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
# Routes that speak OpenAI's error dialect.
OPENAI_PREFIX = "/v1/audio/"

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def alias_table(settings: Settings) -> dict[str, str]:
    """Every OpenAI voice name and the configured voice it means."""
    return {
        name: settings.voice_aliases.get(name, settings.default_voice) for name in OPENAI_VOICES
    }


def resolve_alias(voice: str, settings: Settings) -> str:
    """``voice`` itself, or the configured voice an OpenAI voice name stands for (any case)."""
    key = voice.strip().lower()
    if key in OPENAI_VOICES:
        return settings.voice_aliases.get(key, settings.default_voice)
    return voice


def error_object(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object for an answer of HTTP ``status``."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"message": message, "type": kind, "param": param, "code": code}


def speaks_openai(path: str) -> bool:
    """Whether errors answered to ``path`` carry OpenAI's error object (the ``/v1/audio/``
    routes, unknown ones included); every other path answers ``{"detail": ...}`` alone."""
    return path.startswith(OPENAI_PREFIX)


def error_body(
    path: str, status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The JSON body of an error answered to ``path``: ``{"detail": message}``, with OpenAI's
    ``error`` object next to it where :func:`speaks_openai`. For answers made outside the
    app's exception handlers (middleware refusing a request before any route runs)."""
    body: dict[str, Any] = {"detail": message}
    if speaks_openai(path):
        body["error"] = error_object(status, message, param=param, code=code)
    return body


def error_response(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A JSON error both OpenAI's SDKs and Voxmill's clients read (``error`` and ``detail``)."""
    body = {"error": error_object(status, message, param=param, code=code), "detail": message}
    return JSONResponse({**body, **extra}, status_code=status, headers=headers)


def _with_error(
    response: Response, *, param: str | None = None, code: str | None = None
) -> Response:
    """Add OpenAI's error object to one of the app's JSON errors (``{"detail": ...}``)."""
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        return response
    if not isinstance(body, dict) or "error" in body:
        return response
    detail = body.get("detail")
    message = detail if isinstance(detail, str) else json.dumps(detail)
    body["error"] = error_object(response.status_code, message, param=param, code=code)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return JSONResponse(body, status_code=response.status_code, headers=headers)


def _first_param(exc: RequestValidationError) -> str | None:
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        if loc:
            return ".".join(loc)
    return None


Handler = Callable[[Request, Any], Any]


def install_openai_errors(app: FastAPI) -> None:
    """Give every error answered to a ``/v1/audio/`` path OpenAI's error object too: each of
    the app's exception handlers (installed before this; the validation and HTTP ones default
    to FastAPI's) still makes the answer, and the object is added where
    :func:`speaks_openai`. Answers made by middleware use :func:`error_body`."""
    handlers: dict[Any, Handler] = {
        RequestValidationError: _plain_validation,
        StarletteHTTPException: http_exception_handler,
        **app.exception_handlers,
    }
    handlers.setdefault(HTTPException, handlers[StarletteHTTPException])
    for key, handler in handlers.items():
        if key is not WebSocketRequestValidationError:  # a WebSocket is answered otherwise
            app.add_exception_handler(key, _speaking_openai(handler))


def _speaking_openai(handler: Handler) -> Handler:
    async def wrapped(request: Request, exc: Exception) -> Response:
        response = await _call(handler, request, exc)
        if not speaks_openai(request.url.path) or response.status_code < 400:
            return response
        param = _first_param(exc) if isinstance(exc, RequestValidationError) else None
        return _with_error(response, param=param)

    return wrapped


async def _call(handler: Handler, request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    response: Response = await result if isinstance(result, Awaitable) else result
    return response


async def _plain_validation(_request: Request, exc: RequestValidationError) -> Response:
    return JSONResponse({"detail": str(exc)}, status_code=422)
