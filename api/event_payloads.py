"""The live events of a project, typed: what ``GET /v1/projects/{id}/events`` sends.

Only API replicas publish and read events (through the events fan-out exchange, in the
:class:`contract.messages.EventMessage` envelope), so their payloads are defined here, next to the
REST schemas they reuse: a conversion's progress is always a :class:`~api.schemas.ConversionOut`,
in an event as in ``GET /v1/conversions/{id}``.

=============  ========================================================================
event          ``data``
=============  ========================================================================
``snapshot``   :class:`~api.schemas.ProjectDetail` (first, and after a resync)
``segment``    :class:`SegmentEvent`: a sentence changed status
``conversion`` :class:`~api.schemas.ConversionOut`: a conversion started, was paused,
               resumed or cancelled (its ``state`` says which)
``deleted``    :class:`DeletedEvent`: the project was deleted
=============  ========================================================================

The workers listen too (:mod:`worker.control`): they drop the tasks of a project whose
conversion is paused or cancelled, or that was deleted.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.models import SegmentStatus
from api.schemas import ConversionOut, ProjectDetail
from contract.messages import EventMessage


class SegmentEvent(BaseModel):
    """A sentence changed status. A field that is absent did not change."""

    segment_id: int
    chapter_id: int
    status: SegmentStatus
    duration_ms: int | None = Field(default=None, description="length of its audio, when done")
    error: str | None = Field(default=None, description="why it failed; null clears an old error")
    text: str | None = Field(default=None, description="the new text, after a correction")
    spoken_text: str | None = Field(
        default=None,
        description="the new spoken form, after a correction (empty: nothing to say, a pause)",
    )
    conversion: ConversionOut | None = Field(
        default=None, description="progress of the conversion the sentence belongs to"
    )

    def message(self, project_id: int) -> EventMessage:
        """The envelope to publish; fields never set are left out (they did not change)."""
        data = self.model_dump(mode="json", exclude_unset=True)
        return EventMessage(type="segment", project_id=project_id, data=data)


def conversion_event(conversion: ConversionOut) -> EventMessage:
    """The ``conversion`` event: a conversion started, was paused, resumed or cancelled (its
    progress and state as the REST API has it)."""
    return EventMessage(
        type="conversion",
        project_id=conversion.project_id,
        data=conversion.model_dump(mode="json"),
    )


class DeletedEvent(BaseModel):
    """The project was deleted (with its documents, audio and queued tasks)."""

    project_id: int


def deleted_event(project_id: int) -> EventMessage:
    """The ``deleted`` event of a project."""
    data = DeletedEvent(project_id=project_id).model_dump(mode="json")
    return EventMessage(type="deleted", project_id=project_id, data=data)


class ProjectEventDoc(BaseModel):
    """One server-sent event of a project's stream (for the OpenAPI document): ``event`` is the
    SSE event name, ``data`` its JSON."""

    event: Literal["snapshot", "segment", "conversion", "deleted"]
    data: ProjectDetail | SegmentEvent | ConversionOut | DeletedEvent
