"""Bucket ingest: a document created under the watched prefix of the input bucket starts a job.

Two ways in, both at-least-once, deduplicated here to exactly one job per object version:

- object-created events as OCI Events deliver them through an OCI Notifications HTTPS
  subscription (``POST /v1/ingest/events``, :mod:`api.routes.ingest`): a CloudEvents JSON body,
  in OCI's CloudEvents 0.1 field names (``eventType``, ``eventID``, ``data.resourceName``,
  ``data.additionalDetails.bucketName``) or CloudEvents 1.0 ones (``type``, ``id``);
- :class:`BucketPoller`, for S3-compatible stores without events: it lists the prefix every
  ``VOXMILL_INGEST_POLL_S`` seconds.

Deduplication is by ``(bucket, key, ETag)`` with the ETag the S3 API reports (an event's own
``eTag`` is OCI's native one, which differs, so the event path asks the store with a HEAD): a
unique row written in the same transaction as the job, so a redelivered event, a poll that sees
the object again, or both racing, start one job. A new version of the object (new ETag) is a new
document and starts a new job. The output lands under the output prefix with the same relative
path and name, in a folder of the job's own: ``<in-prefix>a/book.txt`` →
``<out-prefix>a/<job id>/book.flac`` (:func:`api.jobs.output_key`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from api import jobs
from api.job_submit import SubmitError, Submitted, submit
from api.models import IngestedObject
from api.storage import InvalidKey, ObjectError, ObjectTooLarge, check_key
from messaging.service import BackgroundService

if TYPE_CHECKING:
    from api.runtime import Runtime

log = logging.getLogger(__name__)

CREATE_EVENT_TYPES = frozenset(
    {
        "com.oraclecloud.objectstorage.createobject",
        "com.oraclecloud.objectstorage.updateobject",
        # S3-style notifications relayed as CloudEvents by other gateways.
        "com.amazonaws.s3.objectcreated",
    }
)


class EventError(ValueError):
    """The body is not an object-created CloudEvent Voxmill can use; the message says why."""


@dataclass(frozen=True)
class ObjectCreated:
    """What an object-created event names: the event id, bucket and object key."""

    event_id: str
    bucket: str
    key: str


def parse_event(body: Any) -> ObjectCreated | None:
    """An object-created CloudEvent → :class:`ObjectCreated`; ``None`` for other event types.

    Raises:
        EventError: Not a CloudEvent, or an object event without bucket or object name.
    """
    if not isinstance(body, dict):
        raise EventError("the body must be a CloudEvents JSON object")
    kind = body.get("eventType") or body.get("type")
    event_id = body.get("eventID") or body.get("id")
    if not isinstance(kind, str) or not isinstance(event_id, str):
        raise EventError("not a CloudEvent: no eventType/type or eventID/id")
    if kind.lower() not in CREATE_EVENT_TYPES:
        return None
    data = body.get("data")
    if not isinstance(data, dict):
        raise EventError("the event has no data object")
    details = data.get("additionalDetails") or {}
    bucket = details.get("bucketName") if isinstance(details, dict) else None
    key = data.get("resourceName")
    if not isinstance(bucket, str) or not isinstance(key, str) or not bucket or not key:
        raise EventError("the event names no bucket (additionalDetails.bucketName) or object")
    return ObjectCreated(event_id, bucket, key)


def watched(runtime: Runtime, bucket: str, key: str) -> bool:
    """Whether ``bucket/key`` is a document under the watched prefix."""
    s = runtime.settings
    return (
        bool(s.ingest_bucket)
        and bucket == s.ingest_bucket
        and key.startswith(s.ingest_prefix)
        and not key.endswith("/")
    )


def spec_for(runtime: Runtime, bucket: str, key: str) -> jobs.JobSpec:
    """The job an input object starts: outputs under the output prefix, same relative path."""
    s = runtime.settings
    relative = PurePosixPath(key[len(s.ingest_prefix) :])
    folder = "" if str(relative.parent) == "." else f"{relative.parent}/"
    return jobs.JobSpec(
        voice=s.ingest_voice or s.default_voice,
        fmt=s.ingest_format,
        timings=tuple(s.ingest_subtitles),
        output_bucket=s.ingest_output_bucket or bucket,
        output_prefix=f"{s.ingest_output_prefix}{folder}",
        output_name=jobs.output_name_for(relative.name, "document"),
        source="ingest",
        source_ref=f"s3://{bucket}/{key}",
        callback_url=s.ingest_callback_url or None,
    )


async def ingest_object(
    runtime: Runtime, bucket: str, key: str, etag: str | None = None
) -> Submitted | None:
    """Start the job for one input object, once per ``(bucket, key, ETag)``.

    Returns:
        The job (``created`` False for a duplicate), or ``None`` when the object is not watched
        or no longer exists.

    Raises:
        SubmitError: The key is not one a store accepts (422), or the document cannot be read
            (it is recorded nowhere: a fixed upload with a new ETag is tried again).
        api.storage.ObjectError: The store failed (the caller retries later).
    """
    try:
        check_key(key)
    except InvalidKey as e:  # the event's mistake: retrying it can never succeed
        raise SubmitError(422, str(e)) from e
    if not watched(runtime, bucket, key):
        return None
    if etag is None:
        info = await asyncio.to_thread(runtime.objects.head, bucket, key)
        if info is None:
            return None
        etag = info.etag
    seen = await asyncio.to_thread(_ingested, runtime, bucket, key, etag)
    if seen is not None:
        return seen  # announced before: no download, no parse
    try:
        data = await asyncio.to_thread(
            runtime.objects.get_bytes, bucket, key, runtime.settings.max_upload_bytes
        )
    except ObjectTooLarge as e:
        raise SubmitError(413, str(e)) from e
    name = PurePosixPath(key).name
    return await submit(
        runtime,
        spec=spec_for(runtime, bucket, key),
        data=data,
        filename=name,
        ingested=(bucket, key, etag),
    )


def _ingested(runtime: Runtime, bucket: str, key: str, etag: str) -> Submitted | None:
    with runtime.session_factory() as session:
        row = session.scalar(
            select(IngestedObject).where(
                IngestedObject.bucket == bucket,
                IngestedObject.key == key,
                IngestedObject.etag == etag,
            )
        )
        return None if row is None else Submitted(row.job_id or "", False)


class BucketPoller(BackgroundService):
    """Lists the watched prefix every ``VOXMILL_INGEST_POLL_S`` seconds and ingests new objects.

    Objects already ingested cost one indexed look-up each (in :func:`ingest_object`'s
    deduplication); a document that cannot be read is logged once per ETag and skipped.
    """

    def __init__(self, runtime: Runtime) -> None:
        super().__init__("bucket-poller", daemon=True)
        self._runtime = runtime
        self._woken = threading.Event()
        self._refused: set[tuple[str, str]] = set()
        self.created = 0

    def _wake(self) -> None:
        self._woken.set()

    def run(self) -> None:
        """Poll until :meth:`stop`."""
        self._set_connected(True)
        while not self.stopping:
            try:
                asyncio.run(self.poll_once())
            except ObjectError as e:
                log.warning("listing the input bucket failed: %s", e)
            except Exception:
                log.exception("bucket poll failed")
            self._woken.wait(self._runtime.settings.ingest_poll_s)
            self._woken.clear()
        self._set_connected(False)

    async def poll_once(self) -> int:
        """One pass over the prefix; returns how many jobs it created."""
        s = self._runtime.settings
        listed = await asyncio.to_thread(
            lambda: list(self._runtime.objects.list(s.ingest_bucket, s.ingest_prefix))
        )
        created = 0
        for info in listed:
            if self.stopping:
                break
            if (info.key, info.etag) in self._refused:
                continue
            try:
                done = await ingest_object(self._runtime, s.ingest_bucket, info.key, info.etag)
            except SubmitError as e:
                self._refused.add((info.key, info.etag))
                log.warning("input %s refused: %s", info.key, e)
                continue
            if done is not None and done.created:
                created += 1
                log.info("input %s started job %s", info.key, done.job_id)
        self.created += created
        return created
