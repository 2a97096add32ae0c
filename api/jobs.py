"""Batch jobs: a document in, audio (and timings) out to a bucket prefix.

A job is a project of its own converted by the usual pipeline (outbox → tasks → workers →
results); this module adds what a batch service needs around it:

- :func:`create_job` stores the document, its conversion and the job row in one transaction
  (with the ingest deduplication row when the job came from a bucket), so a job exists exactly
  when its tasks do;
- :class:`JobFinisher` notices finished conversions and writes the outputs: each object is put
  whole (an S3 object appears only when its upload completes), and the job is marked
  ``completed`` by a conditional UPDATE; a job cancelled meanwhile has its new objects deleted,
  so nothing half-written is ever final;
- :func:`cancel_job` drops queued tasks (unpublished outbox rows are deleted; published ones carry
  a task id the segments no longer wait for, so their results are ignored).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api import control, crud
from api.job_outputs import MEDIA_TYPES, export_audio, export_timings
from api.models import (
    ACTIVE_JOB_STATUSES,
    Conversion,
    IngestedObject,
    Job,
    JobStatus,
    Segment,
    utcnow,
)
from api.storage import ObjectError, ObjectStore
from api.webhooks import new_message
from audio.codecs import MEDIA_TYPES as AUDIO_MEDIA_TYPES
from contract.settings import Settings
from messaging.service import BackgroundService
from text_processing.isolation import ParsedDocument

log = logging.getLogger(__name__)

# A finalizing job whose claim is older than this is taken over (its finisher died).
CLAIM_LEASE_S = 600.0
ACTIVE = ACTIVE_JOB_STATUSES


@dataclass(frozen=True)
class JobSpec:
    """A validated job request (from ``POST /v1/jobs`` or bucket ingest).

    Attributes:
        voice: The voice that speaks the document.
        fmt: Audio format of the output (``wav``, ``flac``, ``mp3``, ``ogg``).
        timings: Timing formats to write beside it (``json``, ``srt``, ``vtt``).
        output_bucket: Where the outputs go.
        output_prefix: Key prefix of the outputs ("" or ending in ``/``).
        output_name: File name of the outputs without extension.
        source: ``upload``, ``url``, ``text`` or ``ingest``.
        source_ref: ``s3://bucket/key`` for ``url`` and ``ingest``.
        callback_url: Where ``job.completed`` / ``job.failed`` are posted.
    """

    voice: str
    fmt: str
    timings: tuple[str, ...]
    output_bucket: str
    output_prefix: str
    output_name: str
    source: str
    source_ref: str | None = None
    callback_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def digest(self, document: bytes) -> str:
        """SHA-256 of the document and every field: what an idempotency key is bound to."""
        h = hashlib.sha256(document)
        fields = {k: v for k, v in self.__dict__.items() if k != "extra"}
        h.update(json.dumps(fields, sort_keys=True, default=list).encode())
        return h.hexdigest()


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


def output_name_for(filename: str | None, fallback: str) -> str:
    """The outputs' base name: the document's file name without its extension."""
    if filename:
        stem = PurePosixPath(filename).stem
        if stem and stem not in {".", ".."}:
            return stem
    return fallback


def output_key(job: Job, ext: str) -> str:
    """Where one output of ``job`` goes: ``<prefix><job id>/<name>.<ext>``.

    The job id keeps every job's outputs apart, so two jobs with the same prefix and document
    name never write the same object (a later job would otherwise replace an earlier one's).
    """
    return f"{job.output_prefix}{job.id}/{job.output_name}.{ext}"


def find_by_key(session: Session, key: str) -> Job | None:
    """The job created with idempotency key ``key``."""
    return session.scalar(select(Job).where(Job.idempotency_key == key))


def create_job(
    session: Session,
    *,
    spec: JobSpec,
    parsed: ParsedDocument,
    filename: str | None,
    digest: str,
    idempotency_key: str | None = None,
    ingested: tuple[str, str, str] | None = None,
) -> Job:
    """Store the job's project, document, conversion (with its outbox rows) and the job.

    Args:
        session: An open session; the caller commits (and wakes the relay).
        spec: The validated request.
        parsed: The document, read and split by the document pool.
        filename: The document's name.
        digest: :meth:`JobSpec.digest` of the request.
        idempotency_key: The client's ``Idempotency-Key``.
        ingested: ``(bucket, key, etag)`` of the input object for bucket ingest; its unique row
            makes a second job for the same object fail the transaction (IntegrityError).

    Returns:
        The new job (``running``).
    """
    job_id = str(uuid.uuid4())
    if ingested is not None:
        bucket, key, etag = ingested
        session.add(IngestedObject(bucket=bucket, key=key, etag=etag, created_at=utcnow()))
        session.flush()  # the dedup check first, before any work is queued
    project = crud.create_project(session, name=f"job {job_id}", voice=spec.voice)
    session.flush()
    crud.add_document(
        session,
        project=project,
        text=parsed.text,
        fmt=parsed.fmt,
        filename=filename,
        chapters=parsed.chapters,
        kind=parsed.kind,
    )
    session.flush()
    conversion = crud.start_conversion(session, project=project)
    job = Job(
        id=job_id,
        status=JobStatus.RUNNING,
        project_id=project.id,
        conversion_id=conversion.id,
        voice=spec.voice,
        format=spec.fmt,
        timings=",".join(spec.timings),
        output_bucket=spec.output_bucket,
        output_prefix=spec.output_prefix,
        output_name=spec.output_name,
        callback_url=spec.callback_url,
        idempotency_key=idempotency_key,
        request_sha256=digest,
        source=spec.source,
        source_ref=spec.source_ref,
        created_at=utcnow(),
    )
    session.add(job)
    if ingested is not None:
        session.execute(
            update(IngestedObject)
            .where(
                IngestedObject.bucket == ingested[0],
                IngestedObject.key == ingested[1],
                IngestedObject.etag == ingested[2],
            )
            .values(job_id=job_id)
        )
    session.flush()
    return job


@dataclass(frozen=True)
class Progress:
    """A job's progress: segments finished of all, and the estimated seconds left."""

    total: int
    done: int
    failed: int
    eta_s: float | None

    @property
    def fraction(self) -> float:
        """Finished segments ÷ all (1.0 for an empty document)."""
        return 1.0 if self.total == 0 else (self.done + self.failed) / self.total


def progress_of(session: Session, job: Job, now: datetime | None = None) -> Progress:
    """Progress and ETA (the elapsed time per finished segment times the segments left)."""
    conversion = session.get(Conversion, job.conversion_id) if job.conversion_id else None
    if conversion is None:
        return Progress(0, 0, 0, None)
    finished = conversion.done + conversion.failed
    eta = None
    if job.status in ACTIVE and 0 < finished < conversion.total:
        elapsed = ((now or utcnow()) - conversion.started_at).total_seconds()
        eta = round(elapsed / finished * (conversion.total - finished), 1)
    return Progress(conversion.total, conversion.done, conversion.failed, eta)


def cancel_job(session: Session, job: Job) -> bool:
    """Cancel a job that is still running; returns ``False`` when it had already ended.

    Queued segments go back to ``pending`` without a task id: unpublished tasks are deleted from
    the outbox, and results of published ones no longer match any segment (ignored). The caller
    commits.
    """
    changed = (
        session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status.in_(list(ACTIVE)))
            .values(status=JobStatus.CANCELLED, finished_at=utcnow(), error="cancelled")
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        ).first()
        is not None
    )
    if not changed:
        return False
    if job.project_id is not None:
        control.drop_tasks(session, Segment.project_id == job.project_id, discard_in_flight=True)
    conversion = session.get(Conversion, job.conversion_id) if job.conversion_id else None
    if conversion is not None and conversion.finished_at is None:
        # Marked cancelled: once the caller publishes the conversion's event, workers answer
        # its tasks already in RabbitMQ "skipped" without synthesizing them (worker.control).
        control.cancel(session, conversion=conversion)
    return True


class JobFinisher(BackgroundService):
    """Writes the outputs of jobs whose conversion has finished (see the module docstring).

    Args:
        session_factory: Sessions on the application database.
        objects: Where outputs go.
        settings: Poll interval and webhook settings.
        on_event: Called after a ``job.*`` webhook message was committed (wakes the dispatcher).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        objects: ObjectStore,
        settings: Settings,
        on_event: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__("job-finisher", daemon=True)
        self._sessions = session_factory
        self._objects = objects
        self._settings = settings
        self._on_event = on_event
        self._woken = threading.Event()
        self.finished = 0

    def wake(self) -> None:
        """Look for finished conversions now (called when a conversion's last result lands)."""
        self._woken.set()

    def _wake(self) -> None:
        self._woken.set()

    def run(self) -> None:
        """Finish jobs until :meth:`stop`."""
        self._set_connected(True)
        while not self.stopping:
            try:
                self.finish_due()
            except (SQLAlchemyError, ObjectError) as e:
                log.warning("job finisher: %s; trying again", e)
            except Exception:  # one bad job must not stop the others from finishing
                log.exception("job finisher round failed")
            self._woken.wait(self._settings.job_poll_s)
            self._woken.clear()
        self._set_connected(False)

    def finish_due(self) -> int:
        """Finish every job whose conversion is over; returns how many were finished."""
        stale = utcnow() - timedelta(seconds=CLAIM_LEASE_S)
        with self._sessions() as session:
            due = list(
                session.scalars(
                    select(Job.id)
                    .outerjoin(Conversion, Conversion.id == Job.conversion_id)
                    .where(
                        # Over, or gone with its project (deleted some other way than
                        # DELETE /v1/projects, which refuses): such a job can only fail.
                        or_(
                            Conversion.finished_at.is_not(None),
                            Job.project_id.is_(None),
                            Conversion.id.is_(None),
                        ),
                        or_(
                            Job.status == JobStatus.RUNNING,
                            (Job.status == JobStatus.FINALIZING) & (Job.claimed_at < stale),
                        ),
                    )
                    .limit(20)
                )
            )
        count = 0
        for job_id in due:
            if self.stopping:
                break
            if self._claim(job_id, stale):
                self._finish(job_id)
                count += 1
        return count

    def _claim(self, job_id: str, stale: datetime) -> bool:
        with self._sessions.begin() as session:
            return bool(
                session.execute(
                    update(Job)
                    .where(
                        Job.id == job_id,
                        or_(
                            Job.status == JobStatus.RUNNING,
                            (Job.status == JobStatus.FINALIZING) & (Job.claimed_at < stale),
                        ),
                    )
                    .values(status=JobStatus.FINALIZING, claimed_at=utcnow())
                    .returning(Job.id)
                    .execution_options(synchronize_session=False)
                ).first()
                is not None
            )

    def _finish(self, job_id: str) -> None:
        with self._sessions() as session:
            job = session.get(Job, job_id)
            assert job is not None
            conversion = (
                session.get(Conversion, job.conversion_id)
                if job.conversion_id is not None
                else None
            )
            failed = conversion.failed if conversion is not None else 0
            project_id = job.project_id
            bucket = job.output_bucket
            plan = [(job.format, "audio", output_key(job, job.format))] + [
                (fmt, "timings", output_key(job, fmt)) for fmt in job.timings.split(",") if fmt
            ]
        written: list[dict[str, object]] = []
        error = None
        if failed:
            error = f"{failed} segments failed to synthesize; see the job's project"
        elif project_id is None or conversion is None:
            error = "the job's project was deleted before the job finished"
        else:
            try:
                written = self._write_outputs(project_id, bucket, plan)
            except Exception as e:  # any failure to build or store leaves no final output
                log.exception("writing the outputs of job %s failed", job_id)
                error = f"writing the outputs failed: {e}"
        self._complete(job_id, written, error)

    def _write_outputs(
        self, project_id: int, bucket: str, plan: list[tuple[str, str, str]]
    ) -> list[dict[str, object]]:
        written: list[dict[str, object]] = []
        try:
            for fmt, kind, key in plan:
                if kind == "audio":
                    with export_audio(self._sessions, project_id, fmt) as file:
                        self._objects.put_file(bucket, key, file, AUDIO_MEDIA_TYPES[fmt])
                else:
                    with self._sessions() as session:
                        data = export_timings(session, project_id, fmt)
                    self._objects.put_bytes(bucket, key, data, MEDIA_TYPES.get(fmt, ""))
                # Size and ETag as the store has them: a download checks it still serves this
                # version (the ETag of a multipart upload is not an MD5 we could compute).
                info = self._objects.head(bucket, key)
                if info is None:
                    raise ObjectError(f"{bucket}/{key} is missing right after it was written")
                written.append(
                    {
                        "kind": kind,
                        "format": fmt,
                        "bucket": bucket,
                        "key": key,
                        "bytes": info.size,
                        "etag": info.etag,
                    }
                )
        except BaseException:
            self._remove(written)
            raise
        return written

    def _remove(self, written: list[dict[str, object]]) -> None:
        for item in written:
            try:
                self._objects.delete(str(item["bucket"]), str(item["key"]))
            except ObjectError as e:
                log.warning("could not delete %s: %s", item["key"], e)

    def _complete(self, job_id: str, written: list[dict[str, object]], error: str | None) -> None:
        status = JobStatus.FAILED if error else JobStatus.COMPLETED
        with self._sessions.begin() as session:
            changed = (
                session.execute(
                    update(Job)
                    .where(Job.id == job_id, Job.status == JobStatus.FINALIZING)
                    .values(
                        status=status,
                        outputs=json.dumps(written),
                        error=error,
                        finished_at=utcnow(),
                    )
                    .returning(Job.id)
                    .execution_options(synchronize_session=False)
                ).first()
                is not None
            )
            job = session.get(Job, job_id)
            if changed and job is not None:
                session.refresh(job)
                if job.callback_url:
                    event = "job.failed" if error else "job.completed"
                    new_message(session, job, event, self._settings)
        if not changed:
            # Cancelled while the outputs were written: they must not stay as final.
            self._remove(written)
            log.info("job %s was cancelled while finishing; its outputs were removed", job_id)
            return
        self.finished += 1
        log.info("job %s %s", job_id, status.value)
        self._on_event()
