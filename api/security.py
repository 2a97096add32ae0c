"""API-key authentication for the ``/v1`` routes.

Keys come from ``VOXMILL_API_KEYS`` (comma-separated). With no keys configured the API is open,
the embedded mode's default on a developer machine; production refuses placeholder keys (see
:mod:`contract.settings`).
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

from contract.settings import Settings

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers=_CHALLENGE)


def key_matches(presented: str, keys: list[str]) -> bool:
    """Whether ``presented`` equals one of ``keys``, in time independent of where they differ.

    Every key is compared (no early exit), so the response time does not reveal which key, or how
    much of one, matched.
    """
    candidate = presented.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode())
    return matched


def require_api_key(request: Request) -> None:
    """FastAPI dependency: refuse the request unless it carries a configured API key.

    The key is read only from ``Authorization: Bearer <key>``. A key in the query string is never
    accepted: URLs end up in access logs, browser history and proxies.

    Raises:
        HTTPException: 401 with ``WWW-Authenticate: Bearer`` when keys are configured and the
            header is missing, malformed or carries an unknown key.
    """
    settings: Settings = request.app.state.settings
    if not settings.api_keys:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        raise _unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("malformed Authorization header: expected 'Bearer <key>'")
    if not key_matches(token, settings.api_keys):
        raise _unauthorized("invalid API key")
