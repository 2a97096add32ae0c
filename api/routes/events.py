"""``GET /v1/projects/{id}/events``: the project's live updates as server-sent events.

The stream starts with a ``snapshot`` event (the project as ``GET /v1/projects/{id}`` returns it),
then forwards live events (``segment``, ``conversion``) as they arrive on this replica's events
queue, with keep-alive comments in between. A client that reconnects gets a fresh snapshot, so
nothing it missed while disconnected is lost.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sse_starlette.sse import EventSourceResponse

from api.deps import HubDep, RuntimeDep, project_or_404
from api.events import RESYNC
from api.routes.common import ERRORS
from api.routes.projects import project_detail

router = APIRouter(prefix="/v1/projects", tags=["events"])


@router.get(
    "/{project_id}/events",
    summary="Live updates of a project (server-sent events)",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "an event stream: 'snapshot' first, then 'segment' and 'conversion'",
            "content": {"text/event-stream": {}},
        },
        **ERRORS,
    },
)
async def project_events(project_id: int, runtime: RuntimeDep, hub: HubDep) -> EventSourceResponse:
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

    return EventSourceResponse(stream(), ping=runtime.settings.sse_heartbeat_s)
