"""``POST /v1/ingest/events``: object-created events (OCI Events through OCI Notifications).

OCI Notifications cannot send a bearer token of ours, but it sends HTTP Basic credentials
written into the subscription URL (``https://voxmill:<token>@host/...``): the route takes
``VOXMILL_INGEST_TOKEN`` as the Basic password or as a Bearer token (compared in constant time),
and an API key as the other routes do. Without an input bucket configured it answers 404.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status

from api.deps import RuntimeDep
from api.ingest import EventError, ingest_object, parse_event
from api.job_submit import SubmitError
from api.security import key_matches
from api.storage import ObjectError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/ingest", tags=["ingest"])

MAX_EVENT_BYTES = 64 * 1024


def _authorized(request: Request, token: str, api_keys: list[str]) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    presented = ""
    if scheme.lower() == "bearer":
        presented = value.strip()
    elif scheme.lower() == "basic":
        try:
            presented = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    if not presented:
        return False
    if token and hmac.compare_digest(presented.encode(), token.encode()):
        return True
    return scheme.lower() == "bearer" and key_matches(presented, api_keys)


@router.post(
    "/events",
    summary="Receive an object-created event (CloudEvents JSON) and start its job",
    responses={
        200: {
            "description": "ignored (another event type or an unwatched object), or a "
            "subscription confirmation"
        },
        202: {"description": "the job (created now, or earlier for the same object version)"},
        401: {"description": "missing or wrong ingest token (or API key)"},
        404: {"description": "bucket ingest is not enabled"},
    },
)
async def receive_event(request: Request, response: Response, runtime: RuntimeDep) -> Any:
    """Start the job for the object an event names, once per object version."""
    settings = runtime.settings
    keys = list(settings.api_key_roles())
    if (settings.ingest_token or keys) and not _authorized(request, settings.ingest_token, keys):
        raise HTTPException(
            401, detail="missing or wrong ingest token", headers={"WWW-Authenticate": "Bearer"}
        )
    if not settings.ingest_bucket:
        raise HTTPException(404, detail="bucket ingest is not enabled (VOXMILL_INGEST_BUCKET)")
    confirm = request.headers.get("x-oci-ns-confirmationurl")
    if confirm:
        # Confirming means fetching a URL from the request: left to the operator (see the
        # deployment guide) rather than letting a caller make the API fetch URLs.
        log.warning("OCI Notifications subscription confirmation requested: %s", confirm)
        return {"status": "confirmation logged; open the URL to confirm the subscription"}
    raw = await request.body()
    if len(raw) > MAX_EVENT_BYTES:
        raise HTTPException(413, detail=f"an event is at most {MAX_EVENT_BYTES} bytes")
    try:
        event = parse_event(json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HTTPException(422, detail=f"the body is not JSON: {e}") from e
    except EventError as e:
        raise HTTPException(422, detail=str(e)) from e
    if event is None:
        return {"status": "ignored", "reason": "not an object-created event"}
    try:
        submitted = await ingest_object(runtime, event.bucket, event.key)
    except SubmitError as e:
        raise HTTPException(e.status, detail=f"{event.key}: {e}") from e
    except ObjectError as e:
        # 503 makes OCI Notifications deliver the event again later.
        raise HTTPException(503, detail=f"the object store failed: {e}") from e
    if submitted is None:
        return {"status": "ignored", "reason": "not under the watched prefix, or gone"}
    response.status_code = status.HTTP_202_ACCEPTED
    return {"status": "accepted", "job_id": submitted.job_id, "created": submitted.created}
