"""REST bodies of ``/v1/jobs`` (the OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contract import limits

JobAudioFormat = Literal["wav", "flac", "mp3", "ogg"]


class JobOutputLocation(BaseModel):
    """Where a job's outputs go: ``<bucket>/<prefix><job id>/<name>.<ext>``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    bucket: str = Field(min_length=3, max_length=63, description="an allowed bucket")
    prefix: str = Field(default="", max_length=700, description="key prefix, e.g. 'audiobooks/'")


class JobCreate(BaseModel):
    """A new job. Exactly one of ``text`` and ``source_url`` (or a multipart ``file``)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, description="the document as inline text")
    text_format: Literal["text", "markdown", "ssml", "html"] = "text"
    source_url: str | None = Field(
        default=None,
        max_length=1100,
        description="s3://<bucket>/<key> of the document, in an allowed bucket",
        examples=["s3://voxmill-in/books/chapter1.txt"],
    )
    filename: str | None = Field(
        default=None, max_length=255, description="name of the outputs (default: the document's)"
    )
    voice: str | None = Field(default=None, max_length=100)
    format: JobAudioFormat = "flac"
    timings: list[str] = Field(
        default_factory=list, max_length=3, description="timing/subtitle formats: json, srt, vtt"
    )
    output: JobOutputLocation
    callback_url: str | None = Field(
        default=None,
        max_length=limits.MAX_CALLBACK_URL_CHARS,
        description="receives job.completed / job.failed, signed (Standard Webhooks)",
    )


class JobProgress(BaseModel):
    """Segments finished so far."""

    total: int
    done: int
    failed: int
    fraction: float = Field(description="finished ÷ total, 0..1")


class JobOutputOut(BaseModel):
    """One output object."""

    kind: Literal["audio", "timings"]
    format: str
    bucket: str
    key: str = Field(description="<prefix><job id>/<name>.<ext>: unique to the job")
    bytes: int
    etag: str | None = Field(default=None, description="the stored object's ETag when written")
    url: str | None = Field(description="presigned download URL (S3 stores), valid presign_ttl_s")
    download: str = Field(description="API path that streams the object from the store")


class WebhookAttemptOut(BaseModel):
    """One delivery attempt of a callback."""

    event: str
    attempt: int
    status_code: int | None
    error: str | None
    at: datetime


class JobOut(BaseModel):
    """A job: status, progress, ETA and, once completed, its outputs."""

    id: str
    status: Literal["running", "finalizing", "completed", "failed", "cancelled"]
    project_id: int | None
    source: str
    voice: str
    format: str
    timings: list[str]
    output_bucket: str
    output_prefix: str
    progress: JobProgress
    eta_s: float | None = Field(description="estimated seconds left while running")
    outputs: list[JobOutputOut]
    error: str | None
    callback_url: str | None
    deliveries: list[WebhookAttemptOut]
    created_at: datetime
    finished_at: datetime | None
