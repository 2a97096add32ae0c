"""Starting a job from a document: what ``POST /v1/jobs`` and bucket ingest share.

The document is read and split in the runtime's document pool (time and memory bounds, outside
the serving threads), then :func:`api.jobs.create_job` stores everything in one transaction.
Idempotency is enforced by unique constraints, not by a look-up first, so two racing requests
with the same ``Idempotency-Key`` (or two deliveries of the same object-created event) cannot
both create a job: the loser's transaction fails and it answers with the winner's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api import jobs
from api.models import IngestedObject, Job
from api.storage import InvalidKey, check_key
from contract.settings import Settings
from text_processing.formats import UploadError
from text_processing.structure import DocumentError, LimitError

if TYPE_CHECKING:
    from api.runtime import Runtime


class SubmitError(Exception):
    """The job cannot be started; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/ =+-]*$")


def check_bucket(settings: Settings, bucket: str, what: str) -> None:
    """Refuse buckets jobs may not touch (``VOXMILL_JOB_BUCKETS``)."""
    allowed = {*settings.job_buckets, settings.ingest_bucket, settings.ingest_output_bucket} - {""}
    if bucket not in allowed:
        names = ", ".join(sorted(allowed)) or "none are configured (VOXMILL_JOB_BUCKETS)"
        raise SubmitError(422, f"{what} bucket {bucket!r} is not allowed; allowed: {names}")


def normalize_prefix(prefix: str) -> str:
    """An output prefix that is safe as a key prefix: '' or ending in '/'.

    Raises:
        SubmitError: Absolute, with ``..`` or ``.`` parts, or with characters outside S3's safe set.
    """
    if not prefix:
        return ""
    parts = prefix.strip("/").split("/")
    if prefix.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise SubmitError(422, f"output prefix {prefix!r} must be relative, without '.' or '..'")
    if not _PREFIX.match(prefix):
        raise SubmitError(422, f"output prefix {prefix!r} has characters S3 keys should avoid")
    return "/".join(parts) + "/"


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``(bucket, key)``, checked before anything is fetched.

    Raises:
        SubmitError: 422: not an ``s3://`` URL with a bucket and a key, or a key no store
            accepts (:func:`api.storage.check_key`).
    """
    match = re.fullmatch(r"s3://([^/]+)/(.+)", url, flags=re.DOTALL)
    if not match:
        raise SubmitError(422, f"source_url must look like s3://<bucket>/<key>, not {url!r}")
    try:
        check_key(match.group(2))
    except InvalidKey as e:
        raise SubmitError(422, f"source_url: {e}") from e
    return match.group(1), match.group(2)


@dataclass(frozen=True)
class Submitted:
    """The outcome of :func:`submit`: the job id, and whether this call created it."""

    job_id: str
    created: bool


async def submit(
    runtime: Runtime,
    *,
    spec: jobs.JobSpec,
    data: bytes,
    filename: str | None,
    decode_as: str | None = None,
    idempotency_key: str | None = None,
    ingested: tuple[str, str, str] | None = None,
) -> Submitted:
    """Read the document and create its job (or find the one this request already created).

    Raises:
        SubmitError: The idempotency key was used for another request (422), or the document
            cannot be read (413/415/422).
    """
    digest = spec.digest(data)
    factory = runtime.session_factory

    def existing() -> Submitted | None:
        with factory() as session:
            if idempotency_key is not None:
                job = jobs.find_by_key(session, idempotency_key)
                if job is not None:
                    if job.request_sha256 != digest:
                        raise SubmitError(
                            422,
                            "this Idempotency-Key was already used for a different request; "
                            "use a new key for a new job",
                        )
                    return Submitted(job.id, False)
            if ingested is not None:
                row = session.scalar(
                    select(IngestedObject).where(
                        IngestedObject.bucket == ingested[0],
                        IngestedObject.key == ingested[1],
                        IngestedObject.etag == ingested[2],
                    )
                )
                if row is not None:
                    return Submitted(row.job_id or "", False)
        return None

    found = await run_in_threadpool(existing)
    if found is not None:
        return found
    assert runtime.documents is not None
    try:
        parsed = await runtime.documents.parse(
            data,
            filename=decode_as or filename,
            content_type=None,
            limits=runtime.document_limits(),
            lexicon=(),
        )
    except UploadError as e:
        raise SubmitError(e.status, str(e)) from e
    except LimitError as e:
        raise SubmitError(413, str(e)) from e
    except DocumentError as e:
        raise SubmitError(422, str(e)) from e

    def store() -> Submitted:
        with factory() as session:
            try:
                job: Job = jobs.create_job(
                    session,
                    spec=spec,
                    parsed=parsed,
                    filename=filename,
                    digest=digest,
                    idempotency_key=idempotency_key,
                    ingested=ingested,
                )
                session.commit()
                return Submitted(job.id, True)
            except IntegrityError:
                session.rollback()
        again = existing()  # a concurrent request won the unique constraint
        if again is None:
            raise SubmitError(409, "the job could not be stored; try again")
        return again

    submitted = await run_in_threadpool(store)
    if submitted.created:
        runtime.committed()
    return submitted
