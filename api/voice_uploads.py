"""Adding a voice version from an upload: unpack and check it, try it in a limited child process,
archive it, store it, record it and serve it (see :mod:`api.voice_registry` for the rest).

Nothing of an upload is loaded in this process before the child process has spoken its sample;
the archive TorchServe (or the embedded mode) runs is the one built here into the model store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from api.models import Voice, VoiceVersion, utcnow
from api.openai_compat import OPENAI_VOICES
from api.voice_registry import RegistryError, VoiceRegistry
from contract import limits
from voices import marbuild
from voices.sandbox import Limits, SampleReport, validate_voice
from voices.store import archive_key
from voices.unpack import (
    UploadError,
    check_name,
    check_piper_files,
    check_transformers_dir,
    extract_archive,
    staging_dir,
)

MAX_SAMPLE_CHARS = limits.MAX_VOICE_SAMPLE_CHARS
# Handler options per pool profile (what model-store/profiles/*.yaml hold for built-in voices).
_HANDLER_OPTIONS: dict[str, dict[str, int]] = {
    "cpu": {"threads": 1, "max_batch_items": 1},
    "gpu": {"threads": 0, "max_batch_items": 64},
}


@dataclass(frozen=True)
class VoiceUpload:
    """What ``POST /v1/voices`` received (files already copied under the staging directory)."""

    name: str
    language: str
    sample_text: str
    gender: str | None = None
    description: str | None = None
    pool: str | None = None
    make_default: bool = False
    piper_model: Path | None = None
    piper_config: Path | None = None
    archive: Path | None = None


def model_config_yaml(pool: str, *, workers: int, batch: int, delay: int) -> str:
    """The ``model-config.yaml`` of an uploaded voice's archive (its serving settings)."""
    profile = _HANDLER_OPTIONS.get(pool, _HANDLER_OPTIONS["cpu"])
    config: dict[str, Any] = {
        "minWorkers": workers,
        "maxWorkers": workers,
        "batchSize": batch,
        "maxBatchDelay": delay,
        "responseTimeout": 120,
        "deviceType": "gpu" if pool == "gpu" else "cpu",
        "handler": {
            **profile,
            "max_text_chars": 2000,
            "chunk_chars": 400,
            "sentence_pause_ms": 250,
            "clause_pause_ms": 120,
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def add_version(
    registry: VoiceRegistry, upload: VoiceUpload, *, builtin: list[str], who: str
) -> VoiceVersion:
    """Validate, archive, store and register an uploaded voice as its newest version.

    Args:
        registry: The app's voice registry (database, store, what serves voices).
        upload: The request (its files under a staging directory the caller removes).
        builtin: Voices served from the image's model store, whose names are taken.
        who: Who uploads (a key fingerprint).

    Raises:
        UploadError: The upload is not an acceptable voice (answer 422/413).
        RegistryError: Name taken, or TorchServe refused the registration.
    """
    name = check_name(upload.name)
    if name.lower() in OPENAI_VOICES:
        # Requests resolve these names as aliases first (api.openai_compat.resolve_alias): a voice
        # registered under one could never be asked for by its own name.
        raise RegistryError(
            409,
            f"'{name}' is one of OpenAI's voice names, which requests use as aliases of "
            "configured voices (VOXMILL_VOICE_ALIASES); upload it under another name",
        )
    if name in builtin:
        with registry.session_factory() as session:
            exists = session.scalars(select(Voice.id).where(Voice.name == name)).first()
        if exists is None:
            raise RegistryError(
                409,
                f"'{name}' is a built-in voice of this server; upload it under another name",
            )
    text = " ".join(upload.sample_text.split())
    if not text or len(text) > MAX_SAMPLE_CHARS:
        raise UploadError(f"sample_text must be 1-{MAX_SAMPLE_CHARS} characters of text")
    work_root = registry.settings.data_dir / "voice-uploads"
    with registry.upload_lock, staging_dir(work_root, f"{name}-build-") as work:
        staged, family = _stage(registry, upload, name, work)
        report = validate_voice(
            staged,
            text,
            work / "sample.flac",
            Limits(
                timeout_s=registry.settings.voice_validate_timeout_s,
                memory_mb=registry.settings.voice_validate_memory_mb,
            ),
        )
        sample = (work / "sample.flac").read_bytes()
        return _commit(registry, upload, name, family, staged, work, text, report, sample, who)


def _stage(registry: VoiceRegistry, upload: VoiceUpload, name: str, work: Path) -> tuple[Path, str]:
    staged = work / "voice"
    if upload.archive is not None and (
        upload.piper_model is not None or upload.piper_config is not None
    ):
        raise UploadError(
            "send either 'archive' (a transformers voice) or 'model' and 'config' (a Piper "
            "voice), not both"
        )
    if upload.piper_model is not None:
        if upload.piper_config is None:
            raise UploadError("a Piper voice needs its .onnx.json config as well ('config')")
        check_piper_files(upload.piper_model, upload.piper_config)
        try:
            marbuild.stage_piper(name, upload.piper_model, upload.piper_config, staged)
        except marbuild.BuildError as e:
            raise UploadError(str(e)) from e
        return staged, "piper"
    if upload.archive is None:
        raise UploadError(
            "no voice files: send 'model' (.onnx) and 'config' (.onnx.json), or 'archive' "
            "(a transformers save_pretrained directory as .zip or .tar.gz)"
        )
    folder = extract_archive(
        upload.archive,
        work / "unpacked",
        max_unpacked_bytes=registry.settings.max_voice_unpacked_bytes,
    )
    check_transformers_dir(folder)
    try:
        marbuild.stage_transformers(name, folder, staged)
    except marbuild.BuildError as e:
        raise UploadError(str(e)) from e
    return staged, "transformers"


def _commit(
    registry: VoiceRegistry,
    upload: VoiceUpload,
    name: str,
    family: str,
    staged: Path,
    work: Path,
    text: str,
    report: SampleReport,
    sample: bytes,
    who: str,
) -> VoiceVersion:
    pool = registry.check_pool(upload.pool) if upload.pool else None
    with registry.write_lock:
        # Read what the archive needs in a short transaction, and build it outside any: on
        # SQLite every transaction holds the write lock, and archiving takes a while.
        with registry.session_factory() as session:
            existing = session.scalars(select(Voice).where(Voice.name == name)).first()
            pool = pool or (existing.pool if existing else "cpu")
            workers = existing.workers if existing else 1
            batch = existing.batch_size if existing else (1 if pool == "cpu" else 8)
            delay = existing.max_batch_delay_ms if existing else (5 if pool == "cpu" else 20)
            number = 1 + (
                session.scalar(
                    select(func.max(VoiceVersion.number))
                    .join(Voice, VoiceVersion.voice_id == Voice.id)
                    .where(Voice.name == name)
                )
                or 0
            )
        config = work / "model-config.yaml"
        config.write_text(model_config_yaml(pool, workers=workers, batch=batch, delay=delay))
        try:
            built = marbuild.archive(name, staged, config, work / "mar", version=str(number))
        except marbuild.BuildError as e:
            raise RegistryError(500, f"could not archive the voice: {e}") from e
        key = archive_key(name, str(number))
        digest = registry.store.put(key, built)
        try:
            row = _record(
                registry,
                upload,
                name,
                family,
                key,
                digest,
                built,
                number,
                pool,
                text,
                report,
                sample,
                who,
            )
        except BaseException:
            registry.store.delete(key)
            raise
    registry.write_catalog()
    return row


def _record(
    registry: VoiceRegistry,
    upload: VoiceUpload,
    name: str,
    family: str,
    key: str,
    digest: str,
    built: Path,
    number: int,
    pool: str,
    text: str,
    report: SampleReport,
    sample: bytes,
    who: str,
) -> VoiceVersion:
    """Add the version's row (and the voice's, for a new name) and serve it, in one
    transaction: if TorchServe refuses, nothing is recorded."""
    with registry.session_factory() as session:
        voice = session.scalars(select(Voice).where(Voice.name == name)).first()
        if voice is None:
            voice = Voice(
                name=name,
                language=upload.language,
                gender=upload.gender,
                description=upload.description,
                pool=pool,
                workers=1,
                batch_size=1 if pool == "cpu" else 8,
                max_batch_delay_ms=5 if pool == "cpu" else 20,
                created_by=who,
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            session.add(voice)
            session.flush()
        else:
            for field_name in ("language", "gender", "description"):
                value = getattr(upload, field_name)
                if value:
                    setattr(voice, field_name, value)
            voice.pool = pool
        row = VoiceVersion(
            voice_id=voice.id,
            number=number,
            family=family,
            archive_key=key,
            archive_sha256=digest,
            archive_bytes=built.stat().st_size,
            sample_text=text,
            sample_audio=sample,
            sample_rate=report.sample_rate,
            sample_duration_ms=report.duration_ms,
            created_at=utcnow(),
            created_by=who,
        )
        session.add(row)
        if voice.default_version is None or upload.make_default:
            voice.default_version = str(number)
        voice.updated_at = utcnow()
        try:
            session.flush()
            session.refresh(voice, ["versions"])
            registry.serve(voice)
            session.commit()
        except IntegrityError as e:
            session.rollback()
            raise RegistryError(409, "another upload of this voice won; try again") from e
        except RegistryError:
            session.rollback()
            raise
        session.refresh(row)
        return row


def copy_upload(source: Any, target: Path, limit: int) -> int:
    """Copy an uploaded file object to ``target``, refusing it past ``limit`` bytes."""
    size = 0
    with target.open("wb") as out:
        while chunk := source.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise UploadError(
                    f"the upload is over {limit // (1024 * 1024)} MB "
                    "(VOXMILL_MAX_VOICE_UPLOAD_BYTES)"
                )
            out.write(chunk)
    return size
