"""The queue message contract, defined once for the API and the worker, and its wire format.

Every message is versioned. Tasks and events travel as a JSON body. A result carries audio, so it
travels as a binary body (the encoded audio, untouched since the voice handler wrote it) with its
versioned JSON metadata in the :data:`META_HEADER` message header; no base64, no decoding on the
way. :meth:`_Message.to_wire` and :meth:`_Message.from_wire` are the only code that knows this
layout: both publishers (RabbitMQ and in-process) and every consumer go through them.

A consumer that meets a schema it does not know rejects the message to the dead-letter path
instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract import limits
from contract.timings import Timings

# The header holding the JSON metadata of a message whose body is binary.
META_HEADER = "voxmill-meta"
JSON_CONTENT_TYPE = "application/json"


class MessageError(ValueError):
    """A message that is not valid for the expected schema."""


@dataclass(frozen=True)
class Wire:
    """A message as the transports carry it.

    Attributes:
        body: The message body: JSON, or encoded audio for a result.
        content_type: The body's media type (an AMQP property).
        headers: Message headers (AMQP headers table); string values only.
    """

    body: bytes
    content_type: str = JSON_CONTENT_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)


class SynthesisParams(BaseModel):
    """Voice parameters a task carries to the voice."""

    model_config = ConfigDict(extra="forbid")

    speed: float = Field(
        default=limits.SPEED_DEFAULT,
        ge=limits.SPEED_MIN,
        le=limits.SPEED_MAX,
        allow_inf_nan=False,
    )
    noise_scale: float | None = Field(
        default=None, ge=limits.NOISE_MIN, le=limits.NOISE_MAX, allow_inf_nan=False
    )
    noise_w: float | None = Field(
        default=None, ge=limits.NOISE_MIN, le=limits.NOISE_MAX, allow_inf_nan=False
    )


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_wire(self) -> Wire:
        """The message as a JSON body, with the wire name ``schema``."""
        return Wire(body=self.model_dump_json(by_alias=True).encode())

    @classmethod
    def from_wire(cls, body: bytes, headers: Mapping[str, Any] | None = None) -> Self:
        """Parse a message published with :meth:`to_wire`.

        Raises:
            MessageError: With the reason, when it is not valid for this schema.
        """
        return cls._parse(body)

    @classmethod
    def _parse(cls, data: bytes | str) -> Self:
        try:
            return cls.model_validate_json(data)
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
    # The exact version of a registered voice (None: a built-in voice, served unversioned).
    voice_version: str | None = Field(default=None, max_length=20)
    # The TorchServe pool that serves the voice ("cpu", "gpu"); the worker maps it to a URL.
    pool: str | None = Field(default=None, max_length=20)
    # The conversion the task belongs to: a worker drops the tasks of a paused or cancelled one
    # unsynthesized (None: a task written before it was carried).
    conversion_id: int | None = None

    def voice_target(self) -> dict[str, str]:
        """The synthesizer keywords that pin the voice version and pool (empty if neither)."""
        target = {"version": self.voice_version, "pool": self.pool}
        return {k: v for k, v in target.items() if v}

    @model_validator(mode="before")
    @classmethod
    def _drop_unused_priority(cls, data: Any) -> Any:
        # Tasks written before the unused ``priority`` field was removed may still sit in outbox
        # tables and queues at an upgrade: read them (the field never changed anything).
        if isinstance(data, dict) and "priority" in data:
            return {k: v for k, v in data.items() if k != "priority"}
        return data


AudioFormat = Literal["flac"]
_MEDIA_TYPES: dict[str, str] = {"flac": "audio/flac"}


class ResultMessage(_Message):
    """The outcome of a task.

    ``audio`` (the encoded file, ``audio_format``) is there when ``status`` is ``done``; it is the
    message body on the wire and never part of the JSON metadata. ``num_samples`` and
    ``sample_rate`` describe it, so the consumer stores it without decoding it; ``timings`` (word
    and sentence times from the voice) travel in the metadata with it.

    Schema ``voxmill.result/3`` added ``timings``; a ``voxmill.result/2`` result (published by a
    worker of the previous release during an upgrade) is read as one without timings.
    """

    schema_: Literal["voxmill.result/3"] = Field(default="voxmill.result/3", alias="schema")
    task_id: str
    segment_id: int
    project_id: int
    # "skipped": the worker dropped the task unsynthesized because its project's conversion was
    # paused, cancelled or deleted meanwhile (the API puts the sentence back to "not converted").
    status: Literal["done", "failed", "skipped"]
    audio: bytes | None = Field(default=None, exclude=True, repr=False)
    audio_format: AudioFormat = "flac"
    sample_rate: int | None = None
    num_samples: int | None = None
    error: str | None = None
    worker: str = ""
    elapsed_ms: int = 0
    timings: Timings | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_previous_schema(cls, data: Any) -> Any:
        # /2 is /3 without timings: same fields, same wire layout.
        if isinstance(data, dict) and data.get("schema") == "voxmill.result/2":
            if "timings" in data:
                raise ValueError("a voxmill.result/2 result carries no timings")
            return {**data, "schema": "voxmill.result/3"}
        return data

    @property
    def duration_ms(self) -> int | None:
        """Length of ``audio`` in milliseconds, when known."""
        if not self.num_samples or not self.sample_rate:
            return None
        return round(1000 * self.num_samples / self.sample_rate)

    def to_wire(self) -> Wire:
        """The audio as the body (empty without audio), the metadata in :data:`META_HEADER`."""
        meta = self.model_dump_json(by_alias=True)
        if self.audio is None:
            return Wire(body=b"", content_type=JSON_CONTENT_TYPE, headers={META_HEADER: meta})
        media = _MEDIA_TYPES[self.audio_format]
        return Wire(body=self.audio, content_type=media, headers={META_HEADER: meta})

    @classmethod
    def from_wire(cls, body: bytes, headers: Mapping[str, Any] | None = None) -> Self:
        """Parse a result published with :meth:`to_wire`.

        Raises:
            MessageError: The metadata header is missing or invalid (for example a result of
                another schema version), or a ``done`` result has no audio.
        """
        meta = (headers or {}).get(META_HEADER)
        if isinstance(meta, bytes):
            meta = meta.decode("utf-8", errors="replace")
        if not isinstance(meta, str):
            raise MessageError(
                f"invalid {cls.__name__}: no {META_HEADER!r} header with its metadata "
                "(a result of an older schema?)"
            )
        result = cls._parse(meta)
        if result.status == "done" and not body:
            raise MessageError(f"invalid {cls.__name__}: status 'done' without audio")
        return result.model_copy(update={"audio": body or None})


class EventMessage(_Message):
    """A live update fanned out to every API replica and on to browsers.

    The envelope only: what ``data`` holds for each ``type`` is the API's business (typed in
    ``api/event_payloads.py``), since only API replicas publish and read events.
    """

    schema_: Literal["voxmill.event/1"] = Field(default="voxmill.event/1", alias="schema")
    type: str
    project_id: int
    data: dict[str, object] = Field(default_factory=dict)
