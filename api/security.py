"""API-key authentication for the ``/v1`` routes.

Keys come from ``VOXMILL_API_KEYS`` (comma-separated). With no keys configured the API is open,
the embedded mode's default on a developer machine; production refuses placeholder keys (see
:mod:`contract.settings`). A key may carry a role: ``key:admin`` may also manage voices (upload,
set the default version, roll back, scale); a plain ``key`` is a user.
"""

from __future__ import annotations

import hashlib
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


def _presented_key(request: Request) -> str:
    """The bearer token of the request, or a 401 saying what is wrong with the header."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        raise _unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("malformed Authorization header: expected 'Bearer <key>'")
    return token


def require_admin(request: Request) -> None:
    """FastAPI dependency: refuse the request unless its key has the ``admin`` role.

    With no keys configured (a developer's embedded mode) everyone is an admin in the ``local``
    environment and nobody elsewhere: managing voices registers code on the voice servers.

    Raises:
        HTTPException: 401 for a missing or unknown key, 403 for a key without the admin role.
    """
    settings: Settings = request.app.state.settings
    roles = settings.api_key_roles()
    if not roles:
        if settings.environment == "local":
            return
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="managing voices needs an admin key: add one to VOXMILL_API_KEYS as 'KEY:admin'",
        )
    token = _presented_key(request)
    admins = [key for key, have in roles.items() if "admin" in have]
    if key_matches(token, admins):
        return
    if key_matches(token, list(roles)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="this API key may not manage voices: ask for a key with the admin role",
        )
    raise _unauthorized("invalid API key")


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
    token = _presented_key(request)
    if not key_matches(token, list(settings.api_key_roles())):
        raise _unauthorized("invalid API key")


def caller_label(request: Request) -> str:
    """Who made the request, for the record: a fingerprint of the API key (never the key).

    ``"local"`` when the API is open (no keys configured).
    """
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "local"
    digest = hashlib.sha256(token.strip().encode()).hexdigest()[:10]
    return f"key-{digest}"
