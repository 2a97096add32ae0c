"""Every error in one documented shape (``{"detail": ...}``, with OpenAI's ``error`` object too
under ``/v1/audio/``: :mod:`api.openai_compat`), with honest statuses and headers.

Added to what :mod:`api.main` installs for validation and database errors:

- HTTP errors keep their status and headers, and their ``detail`` shows invisible characters
  escaped (``'joe\\u200b'``, never a name that looks like ``'joe'``): :func:`visible`.
- A value the database cannot hold (a NUL character in text, a number out of range) answers 422
  naming the problem, wherever a route let it through: the last line of defence of the class of
  faults "input reaches the database unchecked".
- A body that is not JSON in UTF-8 answers 422 (the documented status of an invalid request),
  not FastAPI's undocumented 400.
- 405 answers carry an ``Allow`` header listing every documented method of the path (Starlette
  lists only the methods of the first route that matched it), and a method the OpenAPI document
  does not list for a path is answered 405 even where another route's template would take it
  (``DELETE /lexicon/import`` is not ``DELETE /lexicon/{entry_id}``): :class:`MethodGuard`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from api.openai_compat import error_body

# Characters a reader cannot see or tell apart: controls, format characters (zero-width space,
# bidirectional marks), private use, unassigned, line and paragraph separators, and spaces other
# than U+0020 (Unicode general categories, UAX #44).
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cn", "Zl", "Zp"})


def visible(text: str) -> str:
    """``text`` with each invisible character written as a Python escape (``\\u200b``)."""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category in _INVISIBLE or (category == "Zs" and ch != " "):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts if p) + "$"
    )


def documented_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document lists for the paths matching ``path``."""
    cache: list[tuple[re.Pattern[str], set[str]]] | None = getattr(
        app.state, "_documented_methods", None
    )
    if cache is None:
        cache = [
            (_path_pattern(template), {m.upper() for m in operations})
            for template, operations in app.openapi().get("paths", {}).items()
        ]
        app.state._documented_methods = cache
    # Like the router, a literal segment wins over a parameter: of the matching templates, take
    # those with the fewest parameters (``/lexicon/import`` is not ``/lexicon/{entry_id}``).
    matching = [(p.pattern.count("[^/]+"), names) for p, names in cache if p.match(path)]
    if not matching:
        return []
    fewest = min(count for count, _ in matching)
    return sorted(set().union(*(names for count, names in matching if count == fewest)))


class MethodGuard:
    """ASGI middleware: 405 for a method the OpenAPI document does not list for a ``/v1`` path.

    Args:
        app: The wrapped ASGI app.
        api: The FastAPI app whose OpenAPI document is the reference.
    """

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            allowed = documented_methods(self.api, scope["path"])
            method = "GET" if scope["method"] == "HEAD" else scope["method"]
            if allowed and method not in allowed:
                use = " or ".join(allowed)
                message = f"{scope['method']} is not allowed here; use {use}"
                response = JSONResponse(
                    error_body(scope["path"], status.HTTP_405_METHOD_NOT_ALLOWED, message),
                    status_code=status.HTTP_405_METHOD_NOT_ALLOWED,
                    headers={"Allow": ", ".join(allowed)},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Install the handlers and :class:`MethodGuard` described in the module docstring."""
    app.add_middleware(MethodGuard, api=app)

    @app.exception_handler(DataError)
    async def unstorable(_request: Request, exc: DataError) -> JSONResponse:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "invalid value"
        return JSONResponse(
            {"detail": visible(f"invalid request: a value cannot be stored ({reason})")},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers: dict[str, Any] = dict(exc.headers or {})
        code = exc.status_code
        detail = visible(str(exc.detail))
        if code == status.HTTP_400_BAD_REQUEST and isinstance(
            exc.__cause__, (UnicodeDecodeError, ValueError)
        ):
            code = status.HTTP_422_UNPROCESSABLE_CONTENT
            detail = "invalid request: the body is not valid JSON in UTF-8"
        elif code == status.HTTP_405_METHOD_NOT_ALLOWED:
            allowed = documented_methods(app, request.url.path)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; use {' or '.join(allowed) or 'none'}"
        elif code == status.HTTP_413_CONTENT_TOO_LARGE and detail == "Content Too Large":
            detail = "the request body is larger than this route accepts"
        return JSONResponse({"detail": detail}, status_code=code, headers=headers)
