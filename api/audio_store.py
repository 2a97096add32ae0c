"""Segment audio in the object store instead of Postgres rows (``VOXMILL_AUDIO_STORE=objects``).

Keys are content-addressed: ``<prefix><sha256[:2]>/<sha256>.flac``. Writing the same audio twice
(a redelivered result, two replicas racing) writes the same object, so writes are idempotent and
need no coordination; Postgres keeps the key in ``segments.audio_key``.

The result consumer writes the object *before* the transaction that records its key. A crash in
between leaves an object no row refers to; so does a result that turns out to be a duplicate, and
a re-synthesis that replaces a segment's audio. :func:`sweep_orphans` deletes such objects once
they are older than a grace period (longer than any write-then-commit window; a re-write of the
same content refreshes the object's time, so a key about to be committed is never swept).

The store travels with the session factory (``session.info["audio_store"]``, set by
:func:`attach`), so code that reads a segment's audio from a session finds it without every
signature in between changing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.models import Segment
from api.storage import ObjectStore
from contract.settings import Settings

log = logging.getLogger(__name__)

INFO_KEY = "audio_store"


@dataclass(frozen=True)
class AudioStore:
    """Segment audio objects in one bucket under one prefix.

    Attributes:
        objects: The object store.
        bucket: The audio bucket.
        prefix: Key prefix of every segment object (``segments/``).
    """

    objects: ObjectStore
    bucket: str
    prefix: str = "segments/"

    def key_for(self, data: bytes) -> str:
        """The content-addressed key of ``data`` (SHA-256, hex)."""
        digest = hashlib.sha256(data).hexdigest()
        return f"{self.prefix}{digest[:2]}/{digest}.flac"

    def put(self, data: bytes) -> str:
        """Store FLAC bytes; returns their key. Idempotent."""
        key = self.key_for(data)
        self.objects.put_bytes(self.bucket, key, data, "audio/flac")
        return key

    def get(self, key: str) -> bytes:
        """The bytes stored under ``key``.

        Raises:
            api.storage.NoSuchObject: The object is gone.
        """
        return self.objects.get_bytes(self.bucket, key)


def build_audio_store(settings: Settings, objects: ObjectStore) -> AudioStore | None:
    """The audio store the settings choose; ``None`` keeps audio in database rows."""
    if settings.audio_store != "objects":
        return None
    return AudioStore(objects, settings.audio_bucket, settings.audio_prefix)


def attach(session_factory: sessionmaker[Session], store: AudioStore | None) -> None:
    """Make ``store`` reachable from every session of ``session_factory``."""
    if store is not None:
        session_factory.configure(info={INFO_KEY: store})


def store_of(session: Session) -> AudioStore | None:
    """The audio store of ``session``'s factory (``None``: audio lives in the rows)."""
    store = session.info.get(INFO_KEY)
    return store if isinstance(store, AudioStore) else None


def segment_audio(session: Session, data: bytes | None, key: str | None) -> bytes | None:
    """A segment's FLAC bytes, from its row (``data``) or the store (``key``)."""
    if data:
        return data
    store = store_of(session)
    if key and store is not None:
        return store.get(key)
    return None


# Parallel GETs when a chapter is read back: one object per sentence, so a download would
# otherwise wait for hundreds of round trips in a row (bench/audio_store_bench.py).
FETCH_THREADS = 8


def segment_audios(
    session: Session, rows: Sequence[tuple[bytes | None, str | None]]
) -> list[bytes | None]:
    """:func:`segment_audio` of many ``(data, key)`` rows, in order; the store's in parallel."""
    store = store_of(session)
    if store is None or not any(key and not data for data, key in rows):
        return [data for data, _ in rows]

    def one(row: tuple[bytes | None, str | None]) -> bytes | None:
        data, key = row
        return data or (store.get(key) if key else None)

    with ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="audio-get") as pool:
        return list(pool.map(one, rows))


def sweep_orphans(
    session_factory: sessionmaker[Session], store: AudioStore, *, grace_s: float
) -> int:
    """Delete audio objects that no segment refers to and that are older than ``grace_s``.

    Returns:
        How many objects were deleted.
    """
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_s)
    candidates = [
        o.key
        for o in store.objects.list(store.bucket, store.prefix)
        if o.last_modified.astimezone(UTC) < cutoff
    ]
    if not candidates:
        return 0
    deleted = 0
    with session_factory() as session:
        for i in range(0, len(candidates), 500):
            chunk = candidates[i : i + 500]
            # A previous take (kept to compare and pick back) is referenced too.
            used = set(
                session.scalars(select(Segment.audio_key).where(Segment.audio_key.in_(chunk)))
            ) | set(
                session.scalars(
                    select(Segment.previous_audio_key).where(Segment.previous_audio_key.in_(chunk))
                )
            )
            for key in chunk:
                if key not in used:
                    store.objects.delete(store.bucket, key)
                    deleted += 1
    if deleted:
        log.info("deleted %d audio objects no segment refers to", deleted)
    return deleted
