"""FastAPI dependencies, as ``Annotated`` aliases for route signatures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.orm import Session

from api.events import EventHub
from api.models import Chapter, Project, Segment
from api.runtime import Runtime
from contract.settings import Settings


def get_runtime(request: Request) -> Runtime:
    """The app's :class:`~api.runtime.Runtime` (built by the lifespan)."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_hub(request: Request) -> EventHub:
    """The app's event hub."""
    hub: EventHub = request.app.state.event_hub
    return hub


def get_session(request: Request) -> Iterator[Session]:
    """A session for one request, closed afterwards (routes commit explicitly)."""
    with request.app.state.session_factory() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
HubDep = Annotated[EventHub, Depends(get_hub)]
SessionDep = Annotated[Session, Depends(get_session)]


def not_found(what: str, ident: int) -> HTTPException:
    """A 404 that names what was not found."""
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} {ident} does not exist")


def project_or_404(session: Session, project_id: int) -> Project:
    """The project, or a 404."""
    project = session.get(Project, project_id)
    if project is None:
        raise not_found("project", project_id)
    return project


def chapter_or_404(session: Session, chapter_id: int) -> Chapter:
    """The chapter, or a 404."""
    chapter = session.get(Chapter, chapter_id)
    if chapter is None:
        raise not_found("chapter", chapter_id)
    return chapter


def segment_or_404(session: Session, segment_id: int) -> Segment:
    """The segment, or a 404."""
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise not_found("segment", segment_id)
    return segment
