"""``/v1/voices``: list voices, upload a voice (a new version), its versions and samples, the
default version and roll-back, serving settings, health and metrics, and a preview to compare
voices. Uploading and every change need an admin key (``VOXMILL_API_KEYS=key:admin``).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from api.deps import SessionDep, SettingsDep
from api.models import Voice
from api.routes.common import ERRORS, attachment
from api.schemas import AudioFormat, ErrorOut
from api.security import caller_label, require_admin
from api.voice_registry import RegistryError, VoiceRegistry
from api.voice_schemas import (
    DefaultVersion,
    PreviewRequest,
    Rollback,
    VoiceHealth,
    VoiceOut,
    VoiceSettings,
    VoiceSettingsOut,
    VoiceVersionOut,
)
from api.voice_uploads import VoiceUpload, add_version, copy_upload
from audio import codecs
from audio.codecs import MEDIA_TYPES
from contract.messages import SynthesisParams
from synthesis.base import SynthesisError, UnknownVoiceError
from voices.unpack import UploadError, staging_dir

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/voices", tags=["voices"])

Admin = [Depends(require_admin)]
_FILE_FIELDS = ("model", "config", "archive")
_TEXT_FIELDS = ("name", "language", "gender", "description", "sample_text", "pool", "make_default")
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "the API key is not an admin key"},
    409: {"model": ErrorOut, "description": "conflicts with the voice's state"},
    502: {"model": ErrorOut, "description": "TorchServe refused the change"},
    **ERRORS,
}


def _text(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


def _binary(description: str) -> dict[str, str]:
    return {"type": "string", "format": "binary", "description": description}


UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["name", "language", "sample_text"],
                "properties": {
                    "name": _text("voice name: lowercase letters, digits, - and _"),
                    "language": _text("BCP 47 language tag, e.g. en-US"),
                    "sample_text": _text("what the voice must say to be accepted"),
                    "gender": _text("optional"),
                    "description": _text("optional"),
                    "pool": _text("TorchServe pool: cpu (default) or gpu"),
                    "make_default": _text("true: the new version becomes the default"),
                    "model": _binary("a Piper voice's .onnx"),
                    "config": _binary("the Piper voice's .onnx.json"),
                    "archive": _binary(
                        "a transformers VITS save_pretrained directory as .zip/.tar.gz"
                    ),
                },
            }
        }
    },
}


def get_registry(request: Request) -> VoiceRegistry:
    """The app's voice registry."""
    registry: VoiceRegistry = request.app.state.voice_registry
    return registry


RegistryDep = Annotated[VoiceRegistry, Depends(get_registry)]


def _fail(error: Exception) -> HTTPException:
    if isinstance(error, RegistryError):
        return HTTPException(error.status, detail=str(error))
    if isinstance(error, UploadError):
        too_big = "MB (VOXMILL_MAX_VOICE" in str(error)
        code = (
            status.HTTP_413_CONTENT_TOO_LARGE if too_big else status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        return HTTPException(code, detail=f"invalid voice: {error}")
    raise error


def _version_out(voice: Voice, request: Request) -> list[VoiceVersionOut]:
    return [
        VoiceVersionOut(
            version=v.version,
            family=v.family,
            is_default=v.version == voice.default_version,
            created_at=v.created_at,
            created_by=v.created_by,
            sample_text=v.sample_text,
            sample_rate=v.sample_rate,
            sample_duration_ms=v.sample_duration_ms,
            sample_url=f"/v1/voices/{voice.name}/versions/{v.version}/sample",
            archive_bytes=v.archive_bytes,
            archive_sha256=v.archive_sha256,
        )
        for v in voice.versions
    ]


def voice_out(voice: Voice, request: Request, default_voice: str) -> VoiceOut:
    """A registered voice with its versions."""
    versions = _version_out(voice, request)
    current = next((v for v in versions if v.is_default), None)
    return VoiceOut(
        id=voice.name,
        name=voice.name,
        default=voice.name == default_voice,
        builtin=False,
        language=voice.language,
        gender=voice.gender,
        description=voice.description,
        pool=voice.pool,
        default_version=voice.default_version,
        workers=voice.workers,
        batch_size=voice.batch_size,
        max_batch_delay_ms=voice.max_batch_delay_ms,
        created_at=voice.created_at,
        created_by=voice.created_by,
        sample_url=current.sample_url if current else None,
        versions=versions,
    )


def _builtin_names(request: Request) -> list[str]:
    synthesizer = getattr(request.app.state, "synthesizer", None)
    if synthesizer is None:
        return [request.app.state.settings.default_voice]
    try:
        return list(synthesizer.voices())
    except Exception:  # the list is a courtesy; registered voices still show
        log.warning("could not list the synthesizer's voices", exc_info=True)
        return []


@router.get(
    "",
    response_model=list[VoiceOut],
    response_model_exclude_none=True,
    summary="The voices this server speaks with",
    responses={503: {"model": ErrorOut, "description": "no voice server configured"}},
)
def list_voices(request: Request, settings: SettingsDep) -> list[VoiceOut]:
    """Built-in voices and registered voices (with their versions), the default one marked."""
    registered: dict[str, VoiceOut] = {}
    factory = getattr(request.app.state, "session_factory", None)
    if factory is not None:
        with factory() as session:
            for voice in session.scalars(select(Voice).order_by(Voice.name)):
                registered[voice.name] = voice_out(voice, request, settings.default_voice)
    elif getattr(request.app.state, "synthesizer", None) is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="speech synthesis is not configured on this server: set "
            "VOXMILL_TORCHSERVE_URL (or VOXMILL_VOICE_ROUTES)",
        )
    builtin = [
        VoiceOut(id=n, name=n, default=n == settings.default_voice, builtin=True)
        for n in _builtin_names(request)
        if n not in registered
    ]
    return sorted([*builtin, *registered.values()], key=lambda v: v.name)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=VoiceOut,
    summary="Upload a voice (or a new version of one)",
    dependencies=Admin,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses={
        413: {"model": ErrorOut, "description": "the upload is over the size limit"},
        **ADMIN_ERRORS,
    },
)
async def upload_voice(
    request: Request, registry: RegistryDep, settings: SettingsDep, session: SessionDep
) -> VoiceOut:
    """Multipart form: ``name``, ``language``, ``sample_text``, optional ``gender``,
    ``description``, ``pool`` (cpu/gpu), ``make_default``; and either ``model`` (Piper .onnx) with
    ``config`` (.onnx.json), or ``archive`` (a transformers VITS save_pretrained directory as
    .zip/.tar.gz, weights as safetensors).

    The voice is loaded in a limited child process and must speak the sample text (not silence,
    a usual sample rate) before it is archived and registered. An existing name gets a new
    version; the first version becomes the default, later ones when ``make_default`` is true.
    """
    if not settings.voice_uploads:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="voice uploads are off on this server: they need a model store shared with "
            "TorchServe (Helm: torchserve.modelStore.existingClaim)",
        )
    declared = request.headers.get("content-length", "")
    limit = settings.max_voice_upload_bytes
    if not declared.isdigit():
        raise HTTPException(
            status.HTTP_411_LENGTH_REQUIRED, detail="send the upload with a Content-Length"
        )
    if int(declared) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            detail=f"invalid voice: the upload is over {limit // (1024 * 1024)} MB "
            "(VOXMILL_MAX_VOICE_UPLOAD_BYTES)",
        )
    form = await request.form(max_files=len(_FILE_FIELDS), max_fields=len(_TEXT_FIELDS) + 4)
    fields = {k: str(form.get(k) or "").strip() for k in _TEXT_FIELDS}
    missing = [k for k in ("name", "language", "sample_text") if not fields[k]]
    if missing:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"invalid voice: missing form field(s): {', '.join(missing)}",
        )
    files = {k: form.get(k) for k in _FILE_FIELDS if hasattr(form.get(k), "read")}
    who = caller_label(request)
    builtin = _builtin_names(request)

    def work() -> str:
        with staging_dir(settings.data_dir / "voice-uploads", "upload-") as folder:
            paths = {}
            for key, upload in files.items():
                paths[key] = folder / f"{key}.upload"
                copy_upload(upload.file, paths[key], limit)  # type: ignore[union-attr]
            add_version(
                registry,
                VoiceUpload(
                    name=fields["name"],
                    language=fields["language"][:35],
                    sample_text=fields["sample_text"],
                    gender=fields["gender"][:20] or None,
                    description=fields["description"][:2000] or None,
                    pool=fields["pool"] or None,
                    make_default=fields["make_default"].lower() in {"1", "true", "yes", "on"},
                    piper_model=paths.get("model"),
                    piper_config=paths.get("config"),
                    archive=paths.get("archive"),
                ),
                builtin=builtin,
                who=who,
            )
            return fields["name"]

    try:
        name = await run_in_threadpool(work)
    except (UploadError, RegistryError) as e:
        raise _fail(e) from e
    finally:
        await form.close()
    session.expire_all()
    return voice_out(registry.get(session, name), request, settings.default_voice)


@router.get(
    "/{name}", response_model=VoiceOut, summary="A voice and its versions", responses=ERRORS
)
def get_voice(name: str, request: Request, session: SessionDep, settings: SettingsDep) -> VoiceOut:
    """The voice, with every version: who uploaded it, when, and its sample's URL."""
    voice = session.query(Voice).filter(Voice.name == name).first()
    if voice is not None:
        return voice_out(voice, request, settings.default_voice)
    if name in _builtin_names(request):
        return VoiceOut(id=name, name=name, default=name == settings.default_voice, builtin=True)
    raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"voice '{name}' does not exist")


@router.get(
    "/{name}/versions/{version}/sample",
    summary="Listen to a version's validation sample",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPES[f]: {} for f in ("wav", "flac")}}, **ERRORS},
)
def voice_sample(
    name: str,
    version: str,
    registry: RegistryDep,
    session: SessionDep,
    format: Annotated[AudioFormat, Query(description="audio format")] = "wav",
) -> Response:
    """The sample text as this version spoke it when it was uploaded."""
    try:
        row = registry.version(session, name, version)
    except RegistryError as e:
        raise _fail(e) from e
    data = row.sample_audio
    if format != "flac":
        samples, rate = codecs.decode(data)
        data = codecs.encode(samples, rate, format)
    return Response(
        data,
        media_type=MEDIA_TYPES[format],
        headers=attachment(f"{name}-v{version}-sample.{format}"),
    )


@router.put(
    "/{name}/default",
    response_model=VoiceOut,
    summary="Set the default version",
    dependencies=Admin,
    responses=ADMIN_ERRORS,
)
async def set_default(
    name: str, body: DefaultVersion, request: Request, registry: RegistryDep, settings: SettingsDep
) -> VoiceOut:
    """New requests for the voice go to ``version``; requests in flight finish on theirs."""
    try:
        voice = await run_in_threadpool(registry.set_default, name, body.version)
    except RegistryError as e:
        raise _fail(e) from e
    return await _fresh(registry, request, voice.name, settings.default_voice)


@router.post(
    "/{name}/rollback",
    response_model=VoiceOut,
    summary="Roll back to the previous version",
    dependencies=Admin,
    responses=ADMIN_ERRORS,
)
async def rollback(
    name: str,
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    body: Rollback | None = None,
) -> VoiceOut:
    """Make the version before the current default (or ``to``) the default again."""
    try:
        voice = await run_in_threadpool(registry.rollback, name, body.to if body else None)
    except RegistryError as e:
        raise _fail(e) from e
    return await _fresh(registry, request, voice.name, settings.default_voice)


@router.patch(
    "/{name}",
    response_model=VoiceSettingsOut,
    summary="Change a voice's workers, batching or pool",
    dependencies=Admin,
    responses=ADMIN_ERRORS,
)
async def configure(
    name: str, body: VoiceSettings, request: Request, registry: RegistryDep, settings: SettingsDep
) -> VoiceSettingsOut:
    """Workers change at once (TorchServe's scale-workers); batch size and delay apply to
    versions registered from now on; ``pool`` moves the voice to another TorchServe pool."""

    def run() -> list[str]:
        _voice, changes = registry.configure(name, **body.model_dump(exclude_none=True))
        return changes

    try:
        changes = await run_in_threadpool(run)
    except RegistryError as e:
        raise _fail(e) from e
    voice = await _fresh(registry, request, name, settings.default_voice)
    return VoiceSettingsOut(voice=voice, changes=changes)


async def _fresh(registry: VoiceRegistry, request: Request, name: str, default: str) -> VoiceOut:
    def read() -> VoiceOut:
        with registry.session_factory() as session:
            return voice_out(registry.get(session, name), request, default)

    return await run_in_threadpool(read)


def _torchserve_metrics(url: str, name: str) -> dict[str, float]:
    """TorchServe's per-model counters for ``name`` from its metrics endpoint (summed per
    metric and version; TorchServe's version ``default`` counts requests that named none)."""
    try:
        text = httpx.get(url.rstrip("/") + "/metrics", timeout=3.0).text
    except httpx.HTTPError as e:
        return {"error": f"metrics endpoint unreachable: {e!r}"}  # type: ignore[dict-item]
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("model_name", labels.get("ModelName")) != name:
                continue
            version = labels.get("model_version", labels.get("ModelVersion", ""))
            key = f"{sample.name}{{version={version}}}" if version else sample.name
            out[key] = out.get(key, 0.0) + float(sample.value)
    return out


def _api_metrics(request: Request, name: str) -> dict[str, float]:
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is None:
        return {}
    out: dict[str, float] = {}
    for family in metrics.registry.collect():
        if not family.name.startswith("voxmill_speech"):
            continue
        for sample in family.samples:
            if sample.labels.get("voice") == name and sample.name.endswith(("_total", "_count")):
                out[sample.name] = out.get(sample.name, 0.0) + float(sample.value)
    return out


@router.get(
    "/{name}/health",
    response_model=VoiceHealth,
    summary="Whether a voice is served, and its metrics",
    responses=ERRORS,
)
async def voice_health(
    name: str, request: Request, registry: RegistryDep, settings: SettingsDep
) -> VoiceHealth:
    """TorchServe's workers per version (or the versions loaded in-process), the API's speech
    counters for the voice and, with ``VOXMILL_TORCHSERVE_METRICS_URL``, TorchServe's."""
    try:
        serving = await run_in_threadpool(registry.health, name)
    except RegistryError as e:
        raise _fail(e) from e
    metrics: dict[str, Any] = {"api": _api_metrics(request, name)}
    if settings.torchserve_metrics_url:
        metrics["torchserve"] = await run_in_threadpool(
            _torchserve_metrics, settings.torchserve_metrics_url, name
        )
    return VoiceHealth(name=name, healthy=serving.get("healthy"), serving=serving, metrics=metrics)


@router.post(
    "/{name}/preview",
    summary="Hear a sentence in a voice (to compare voices)",
    response_class=Response,
    responses={200: {"content": {"audio/wav": {}}}, **ERRORS},
)
async def preview(
    name: str, body: PreviewRequest, request: Request, registry: RegistryDep
) -> Response:
    """The sentence in this voice (``version``, or its default) as WAV."""
    synthesizer = getattr(request.app.state, "synthesizer", None)
    if synthesizer is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="no synthesizer here")
    target: dict[str, str] = {}
    if body.version:
        target["version"] = body.version
    pool = registry.pool_of(name)
    if pool:
        target["pool"] = pool
    try:
        audio = await run_in_threadpool(
            synthesizer.synthesize_encoded,
            name,
            body.text,
            SynthesisParams(),
            fmt="wav",
            **target,
        )
    except UnknownVoiceError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(e)) from e
    except SynthesisError as e:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(e)) from e
    return Response(audio.data, media_type=MEDIA_TYPES["wav"])
