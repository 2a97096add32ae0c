"""``GET /v1/projects/{id}/events``: the project's live updates as server-sent events.

The stream starts with a ``snapshot`` event (the project as ``GET /v1/projects/{id}`` returns it),
then forwards live events (``segment``, ``conversion``; their payloads are typed in
:mod:`api.event_payloads`) as they arrive on this replica's events queue, with keep-alive comments
in between. A client that reconnects gets a fresh snapshot, so nothing it missed while
disconnected is lost.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sse_starlette.sse import EventSourceResponse

from api.deps import HubDep, RuntimeDep, project_or_404
from api.event_payloads import ProjectEventDoc
from api.events import RESYNC
from api.routes.common import Id, json_errors
from api.routes.projects import project_detail

router = APIRouter(prefix="/v1/projects", tags=["events"])


class EventStream(EventSourceResponse):
    """sse-starlette's response, with its media type known to FastAPI's OpenAPI document (which
    reads it from the class) so the event schema is documented under ``text/event-stream``."""

    media_type = "text/event-stream"


@router.get(
    "/{project_id}/events",
    summary="Live updates of a project (server-sent events)",
    response_class=EventStream,
    responses={
        200: {
            "model": ProjectEventDoc,
            "description": (
                "An event stream. `snapshot` first (data: ProjectDetail), then `segment` (data: "
                "SegmentEvent, whose `conversion` is a ConversionOut) and `conversion` (data: "
                "ConversionOut) as they happen."
            ),
        },
        **json_errors(),
    },
)
async def project_events(project_id: Id, runtime: RuntimeDep, hub: HubDep) -> EventStream:
    """Follow a project live."""
    factory = runtime.session_factory

    def snapshot() -> str:
        with factory() as session:
            return project_detail(session, project_or_404(session, project_id)).model_dump_json()

    def exists() -> None:
        with factory() as session:
            project_or_404(session, project_id)

    await run_in_threadpool(exists)  # a 404 is still a plain JSON error, before the stream

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with hub.subscribe(project_id) as queue:
            # Subscribed before the snapshot is taken, so no event falls between the two.
            yield {"event": "snapshot", "data": await run_in_threadpool(snapshot)}
            while True:
                event = await queue.get()
                if event is RESYNC:
                    yield {"event": "snapshot", "data": await run_in_threadpool(snapshot)}
                    continue
                yield {"event": event.type, "data": json.dumps(event.data)}

    return EventStream(stream(), ping=runtime.settings.sse_heartbeat_s)
