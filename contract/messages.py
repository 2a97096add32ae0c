"""The queue message contract, defined once for the API and the worker.

Every body is versioned JSON. A consumer that meets a schema it does not know rejects the
message to the dead-letter path instead of guessing.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TASK_SCHEMA = "voxmill.task/1"
RESULT_SCHEMA = "voxmill.result/1"
EVENT_SCHEMA = "voxmill.event/1"


class MessageError(ValueError):
    """A message body that is not valid JSON of the expected schema."""


class SynthesisParams(BaseModel):
    """Voice parameters a task carries to TorchServe."""

    model_config = ConfigDict(extra="forbid")

    speed: float = Field(default=1.0, gt=0.1, le=4.0)
    noise_scale: float | None = Field(default=None, ge=0.0, le=2.0)
    noise_w: float | None = Field(default=None, ge=0.0, le=2.0)


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_bytes(self) -> bytes:
        """Serialise for publishing, with the wire name ``schema``."""
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> Self:
        """Parse a body, raising :class:`MessageError` with the reason when it is not valid."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as e:
            raise MessageError(f"invalid {cls.__name__}: {e.errors()[:3]}") from e


class TaskMessage(_Message):
    """One sentence to synthesize; ``task_id`` is unique per (segment, attempt)."""

    schema_: Literal["voxmill.task/1"] = Field(default="voxmill.task/1", alias="schema")
    task_id: str
    project_id: int
    segment_id: int
    attempt: int = 1
    voice: str
    text: str = Field(min_length=1)
    params: SynthesisParams = Field(default_factory=SynthesisParams)
    priority: int = Field(default=0, ge=0, le=9)


class ResultMessage(_Message):
    """The outcome of a task. ``audio`` is base64 FLAC when ``status`` is ``done``."""

    schema_: Literal["voxmill.result/1"] = Field(default="voxmill.result/1", alias="schema")
    task_id: str
    segment_id: int
    project_id: int
    status: Literal["done", "failed"]
    audio: str | None = None
    audio_format: Literal["flac"] = "flac"
    sample_rate: int | None = None
    duration_ms: int | None = None
    error: str | None = None
    worker: str = ""
    elapsed_ms: int = 0


class EventMessage(_Message):
    """A live update fanned out to every API replica and on to browsers."""

    schema_: Literal["voxmill.event/1"] = Field(default="voxmill.event/1", alias="schema")
    type: str
    project_id: int
    data: dict[str, object] = Field(default_factory=dict)
