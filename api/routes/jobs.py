"""``/v1/jobs``: batch jobs (document in, audio and timings out to a bucket), poll, cancel."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import jobs
from api.deps import RuntimeDep
from api.event_payloads import conversion_event
from api.job_outputs import MEDIA_TYPES, TIMING_FORMATS
from api.job_schemas import (
    JobCreate,
    JobOut,
    JobOutputOut,
    JobProgress,
    WebhookAttemptOut,
)
from api.job_submit import SubmitError, check_bucket, normalize_prefix, parse_s3_url, submit
from api.models import Conversion, Job, Voice, WebhookAttempt, WebhookMessage, utcnow
from api.routes.common import ERRORS, attachment
from api.runtime import Runtime
from api.schemas import ConversionOut, ErrorOut
from api.storage import (
    InvalidKey,
    NoSuchObject,
    ObjectChanged,
    ObjectError,
    ObjectTooLarge,
)
from api.webhooks import CallbackRefused, check_callback_url
from audio.codecs import MEDIA_TYPES as AUDIO_MEDIA_TYPES
from contract import limits

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {"schema": JobCreate.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "job"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "job": {"type": "string", "description": "JobCreate as JSON, without text"},
                },
            }
        },
    },
}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=limits.MAX_IDEMPOTENCY_KEY_CHARS,
        description="repeat a creation safely: the same key and request return the same job",
    ),
]


def _http(e: SubmitError) -> HTTPException:
    return HTTPException(e.status, detail=str(e))


async def _read(request: Request, limit: int) -> tuple[JobCreate, bytes | None, str | None]:
    """The request's JobCreate, and the uploaded file's bytes and name (multipart)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPException(413, detail=f"the request is over the {limit}-byte document limit")
    try:
        if media == "multipart/form-data":
            async with request.form(max_files=1, max_fields=5, max_part_size=limit + 1) as form:
                raw, upload = form.get("job"), form.get("file")
                if not isinstance(upload, UploadFile) or not isinstance(raw, str):
                    raise HTTPException(
                        422, detail="send the document as field 'file' and the job as 'job'"
                    )
                data = await upload.read(limit + 1)
                if len(data) > limit:
                    raise HTTPException(413, detail=f"the document is over {limit} bytes")
                return JobCreate.model_validate_json(raw), data, upload.filename
        if media != "application/json":
            raise HTTPException(415, detail="send JSON (JobCreate) or multipart (file + job)")
        body = bytearray()
        async for chunk in request.stream():  # checked while reading, not after
            body += chunk
            if len(body) > limit + 64 * 1024:
                raise HTTPException(413, detail=f"the request is over the {limit}-byte limit")
        return JobCreate.model_validate_json(bytes(body)), None, None
    except StarletteHTTPException as e:
        if e.status_code != 400:  # Starlette's answer to a malformed multipart body
            raise
        raise HTTPException(422, detail=f"invalid multipart body: {e.detail}") from e
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise HTTPException(422, detail=f"invalid job: {where}: {first['msg']}") from e


def _voice(runtime: Runtime, request: Request, wanted: str | None) -> str:
    voice = wanted or runtime.settings.default_voice
    synthesizer = request.app.state.synthesizer
    if synthesizer is not None:
        with runtime.session_factory() as session:
            known = [*synthesizer.voices(), *session.scalars(select(Voice.name))]
        if known and voice not in known:
            raise HTTPException(422, detail=f"unknown voice '{voice}'; available: {known}")
    return voice


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobOut,
    summary="Start a batch job (document in, audio and timings out to a bucket)",
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={
        200: {"model": JobOut, "description": "the job this Idempotency-Key created"},
        413: {"model": ErrorOut, "description": "the document is over the upload limit"},
        415: {"model": ErrorOut, "description": "neither JSON nor multipart (file + job)"},
        429: {
            "model": ErrorOut,
            "description": "too many requests from this client; see Retry-After",
        },
        **ERRORS,
    },
)
async def create_job(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> JobOut:
    """Accept a job and return at once; poll ``GET /v1/jobs/{id}`` or give a ``callback_url``."""
    settings = runtime.settings
    body, data, filename = await _read(request, settings.max_upload_bytes)
    sources = [x for x in (data, body.text, body.source_url) if x is not None]
    if len(sources) != 1:
        raise HTTPException(422, detail="give exactly one of: a file, text, source_url")
    unknown = [t for t in body.timings if t not in TIMING_FORMATS]
    if unknown:
        raise HTTPException(
            422, detail=f"timings {unknown} not available; use {sorted(TIMING_FORMATS)}"
        )
    decode_as = None
    try:
        check_bucket(settings, body.output.bucket, "output")
        prefix = normalize_prefix(body.output.prefix)
        source, ref = "upload", None
        if body.text is not None:
            source, data = "text", body.text.encode()
            suffix = {"markdown": ".md", "ssml": ".ssml", "html": ".html"}.get(body.text_format)
            decode_as = f"pasted{suffix or '.txt'}"
        elif body.source_url is not None:
            bucket, key = parse_s3_url(body.source_url)
            check_bucket(settings, bucket, "source")
            source, ref, filename = "url", body.source_url, key.rsplit("/", 1)[-1]
            data = await run_in_threadpool(_fetch, runtime, bucket, key)
    except SubmitError as e:
        raise _http(e) from e
    if body.callback_url is not None:
        if not settings.webhook_secret:
            raise HTTPException(422, detail="callbacks are not configured (VOXMILL_WEBHOOK_SECRET)")
        try:
            await run_in_threadpool(
                check_callback_url, body.callback_url, settings.webhook_allow_networks
            )
        except CallbackRefused as e:
            raise HTTPException(422, detail=str(e)) from e
    assert data is not None
    spec = jobs.JobSpec(
        voice=_voice(runtime, request, body.voice),
        fmt=body.format,
        timings=tuple(dict.fromkeys(body.timings)),
        output_bucket=body.output.bucket,
        output_prefix=prefix,
        output_name=jobs.output_name_for(body.filename or filename, "document"),
        source=source,
        source_ref=ref,
        callback_url=body.callback_url,
    )
    try:
        submitted = await submit(
            runtime,
            spec=spec,
            data=data,
            filename=body.filename or filename,
            decode_as=decode_as,
            idempotency_key=idempotency_key,
        )
    except SubmitError as e:
        raise _http(e) from e
    if not submitted.created:
        response.status_code = status.HTTP_200_OK
    return await run_in_threadpool(job_out, runtime, submitted.job_id)


def _fetch(runtime: Runtime, bucket: str, key: str) -> bytes:
    try:
        return runtime.objects.get_bytes(bucket, key, limit=runtime.settings.max_upload_bytes)
    except NoSuchObject as e:
        raise SubmitError(422, f"source_url: {e}") from e
    except ObjectTooLarge as e:
        raise SubmitError(413, f"source_url: {e}") from e
    except InvalidKey as e:  # checked at submission already; a store's own rule stays a 422
        raise SubmitError(422, f"source_url: {e}") from e
    except ObjectError as e:
        raise SubmitError(502, f"source_url could not be read: {e}") from e


def job_out(runtime: Runtime, job_id: str) -> JobOut:
    """The job as ``GET /v1/jobs/{id}`` shows it.

    Raises:
        HTTPException: 404 when there is no such job.
    """
    with runtime.session_factory() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise HTTPException(404, detail=f"job {job_id} does not exist")
        progress = jobs.progress_of(session, job)
        attempts = session.execute(
            select(WebhookMessage.event_type, WebhookAttempt)
            .join(WebhookAttempt, WebhookAttempt.message_id == WebhookMessage.id)
            .where(WebhookMessage.job_id == job.id)
            .order_by(WebhookAttempt.id)
        ).all()
        outputs = [
            JobOutputOut(
                **item,
                url=runtime.objects.presign(
                    item["bucket"], item["key"], runtime.settings.presign_ttl_s
                ),
                download=f"/v1/jobs/{job.id}/outputs/{item['format']}",
            )
            for item in (json.loads(job.outputs) if job.outputs else [])
        ]
        return JobOut(
            id=job.id,
            status=job.status,  # type: ignore[arg-type]
            project_id=job.project_id,
            source=job.source,
            voice=job.voice,
            format=job.format,
            timings=[t for t in job.timings.split(",") if t],
            output_bucket=job.output_bucket,
            output_prefix=job.output_prefix,
            progress=JobProgress(
                total=progress.total,
                done=progress.done,
                failed=progress.failed,
                fraction=round(progress.fraction, 4),
            ),
            eta_s=progress.eta_s,
            outputs=outputs,
            error=job.error,
            callback_url=job.callback_url,
            deliveries=[
                WebhookAttemptOut(
                    event=event,
                    attempt=a.attempt,
                    status_code=a.status_code,
                    error=a.error,
                    at=a.at,
                )
                for event, a in attempts
            ],
            created_at=job.created_at,
            finished_at=job.finished_at,
        )


@router.get("/{job_id}", response_model=JobOut, summary="A job's status", responses=ERRORS)
def get_job(job_id: str, runtime: RuntimeDep) -> JobOut:
    """Status, progress and ETA; when completed, the output keys and presigned URLs."""
    return job_out(runtime, job_id)


@router.delete(
    "/{job_id}",
    response_model=JobOut,
    summary="Cancel a job",
    responses={409: {"description": "the job has already ended"}, **ERRORS},
)
def cancel_job(job_id: str, runtime: RuntimeDep) -> JobOut:
    """Stop the job: its unpublished tasks are dropped, tasks already queued are skipped by the
    workers unsynthesized, and outputs being written are removed."""
    with runtime.session_factory() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise HTTPException(404, detail=f"job {job_id} does not exist")
        if not jobs.cancel_job(session, job):
            session.rollback()
            session.refresh(job)
            raise HTTPException(409, detail=f"job {job_id} has already ended ({job.status})")
        session.commit()
        conversion = session.get(Conversion, job.conversion_id) if job.conversion_id else None
        if conversion is not None:
            # Tells the workers to skip the conversion's tasks still in RabbitMQ.
            runtime.committed(conversion_event(ConversionOut.of(conversion, utcnow())))
    return job_out(runtime, job_id)


@router.get(
    "/{job_id}/outputs/{fmt}",
    summary="Download one output of a completed job (streamed from the store)",
    response_class=StreamingResponse,
    responses={
        409: {"model": ErrorOut, "description": "the stored object was replaced since"},
        502: {"model": ErrorOut, "description": "the object store failed"},
        **ERRORS,
    },
)
def job_output(job_id: str, fmt: str, runtime: RuntimeDep) -> StreamingResponse:
    """The output object in format ``fmt`` (the audio format, or a timings format).

    Only the version the job wrote is served (its ETag is checked in the same read), with the
    length of the bytes actually sent: 404 when the object was deleted, 409 when something
    else was written over it.
    """
    with runtime.session_factory() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise HTTPException(404, detail=f"job {job_id} does not exist")
        items = [o for o in json.loads(job.outputs or "[]") if o["format"] == fmt]
    if not items:
        raise HTTPException(404, detail=f"job {job_id} has no {fmt!r} output (yet)")
    item = items[0]
    where = f"{item['bucket']}/{item['key']}"
    try:
        stream = runtime.objects.stream(item["bucket"], item["key"], if_match=item.get("etag"))
    except NoSuchObject as e:
        raise HTTPException(404, detail=f"the output {where} is no longer in the store") from e
    except ObjectChanged as e:
        raise HTTPException(409, detail=_replaced(where)) from e
    except ObjectError as e:
        raise HTTPException(502, detail=f"the output could not be read: {e}") from e
    if stream.info.size != item["bytes"]:  # outputs recorded before ETags were kept
        stream.chunks.close()
        raise HTTPException(409, detail=_replaced(where))
    media = AUDIO_MEDIA_TYPES.get(fmt) or MEDIA_TYPES.get(fmt, "application/octet-stream")
    name = item["key"].rsplit("/", 1)[-1]
    headers = attachment(name) | {"Content-Length": str(stream.info.size)}
    return StreamingResponse(stream.chunks, media_type=media, headers=headers)


def _replaced(where: str) -> str:
    return f"the output {where} was replaced in the store after the job wrote it; not served"
