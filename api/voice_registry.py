"""The voice registry: uploaded voices, their versions, and what serves them.

Adding a version: the upload is unpacked and checked (:mod:`voices.unpack`), staged as a voice
directory, tried in a limited child process (:mod:`voices.sandbox`), archived as a ``.mar``
(:mod:`voices.marbuild`), stored in the model store (:mod:`voices.store`), recorded in the database
and registered where it is served: TorchServe's management API (:mod:`voices.management`), or the
embedded mode's in-process synthesizer. The catalog in the model store is rewritten after every
change, so ``voxmill voice-sync`` sidecars bring every TorchServe replica in line too.

Setting the default version and rolling back are one TorchServe ``set-default`` each: new requests
go to the new version, those queued on the old one finish there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.models import Voice, VoiceVersion, utcnow
from contract.settings import Mode, Settings
from messaging.service import BackgroundService
from voices.management import (
    ManagementClient,
    ManagementError,
    VersionSpec,
    VoiceSpec,
    apply_voice,
    voice_health,
)
from voices.store import LocalVoiceStore, VoiceStore

log = logging.getLogger(__name__)

POOLS_DEFAULT = ("cpu", "gpu")
POOL_CACHE_S = 10.0


class RegistryError(Exception):
    """A request the registry refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def spec_of(voice: Voice, *, standby_workers: int = 1) -> VoiceSpec:
    """What TorchServe should serve for ``voice``."""
    return VoiceSpec(
        name=voice.name,
        pool=voice.pool,
        default_version=voice.default_version,
        versions=tuple(VersionSpec(v.version, v.archive_key) for v in voice.versions),
        workers=voice.workers,
        batch_size=voice.batch_size,
        max_batch_delay_ms=voice.max_batch_delay_ms,
        standby_workers=standby_workers,
    )


class VoiceRegistry:
    """Registered voices: adding versions, choosing the default, serving settings, health.

    Args:
        settings: Limits, model store, data directory, management URLs and pools.
        session_factory: Database sessions.
        synthesizer: The app's synthesizer; in the embedded mode it serves registered voices
            itself (``set_voice``).
        store: Where archives go (default: the model-store directory).
        management: ``pool -> client`` override (tests); default from the settings.
    """

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        synthesizer: object | None,
        *,
        store: VoiceStore | None = None,
        management: Callable[[str], ManagementClient | None] | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.synthesizer = synthesizer
        self.store = store or LocalVoiceStore(settings.model_store)
        self._management = management or self._client_for
        self._clients: dict[str, ManagementClient] = {}
        self._pools: dict[str, str] = {}
        self._pools_read_at = float("-inf")
        self.upload_lock = threading.Lock()  # one validation at a time: it takes whole cores
        self.write_lock = threading.Lock()

    # -- serving -----------------------------------------------------------------------------

    def serves_in_process(self) -> bool:
        """Whether registered voices run in this process (the embedded mode's own synthesizer)
        rather than on TorchServe (which the embedded mode also uses when it is configured)."""
        return self.settings.mode is Mode.EMBEDDED and callable(
            getattr(self.synthesizer, "set_voice", None)
        )

    def _client_for(self, pool: str) -> ManagementClient | None:
        url = self.settings.management_url_for(pool)
        if not url or self.serves_in_process():
            return None
        if url not in self._clients:
            self._clients[url] = ManagementClient(url, self.settings.management_key)
        return self._clients[url]

    def close(self) -> None:
        """Close the management clients."""
        for client in self._clients.values():
            client.close()

    def pool_of(self, name: str) -> str | None:
        """The pool of a registered voice (``None`` for a built-in voice).

        Read from the database at most every :data:`POOL_CACHE_S` seconds, so a voice another
        API replica registered is routed right soon after.
        """
        now = time.monotonic()
        if now - self._pools_read_at > POOL_CACHE_S:
            try:
                with self.session_factory() as session:
                    rows = session.execute(select(Voice.name, Voice.pool)).all()
                self._pools = {voice: pool for voice, pool in rows}
                self._pools_read_at = now
            except SQLAlchemyError as e:  # routing falls back to the default pool meanwhile
                log.warning("could not read the voices' pools: %s", e)
        return self._pools.get(name)

    def serve(self, voice: Voice) -> list[str]:
        """Apply ``voice`` to what serves it (TorchServe or in-process); returns what changed.

        The catalog is rewritten by the caller after its transaction commits.
        """
        self._pools[voice.name] = voice.pool
        if self.serves_in_process():
            self.synthesizer.set_voice(  # type: ignore[union-attr]
                voice.name,
                {v.version: v.archive_key for v in voice.versions},
                voice.default_version,
            )
            return [f"{voice.name}: served in-process"]
        client = self._management(voice.pool)
        if client is None:
            return [f"{voice.name}: catalog updated; the voice-sync sidecars apply it"]
        try:
            return apply_voice(client, spec_of(voice))
        except ManagementError as e:
            raise RegistryError(
                502 if e.status < 500 else 503, f"TorchServe did not take the change: {e}"
            ) from e

    def write_catalog(self) -> None:
        """Rewrite the model store's catalog from the committed registry (for voice-sync)."""
        with self.session_factory() as session:
            voices = session.scalars(select(Voice).order_by(Voice.name)).all()
            entries = [spec_of(v).to_json() for v in voices]
        self.store.write_catalog({"schema": "voxmill.voices/1", "voices": entries})

    def sync_all(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Serve every registered voice (at start-up: TorchServe may have restarted).

        Args:
            stopping: Polled between voices; ``True`` ends the pass early (the app is stopping).
        """
        with self.session_factory() as session:
            voices = session.scalars(select(Voice).order_by(Voice.name)).all()
            for voice in voices:
                voice.versions  # noqa: B018 - load before the session closes
        for voice in voices:
            if stopping():
                return
            try:
                self.serve(voice)
            except RegistryError as e:
                log.warning("voice %s not served yet: %s", voice.name, e)
        self.write_catalog()

    # -- reading -------------------------------------------------------------------------------

    def get(self, session: Session, name: str) -> Voice:
        """The registered voice, or a 404."""
        voice = session.scalars(select(Voice).where(Voice.name == name)).first()
        if voice is None:
            raise RegistryError(404, f"voice '{name}' is not registered")
        return voice

    def version(self, session: Session, name: str, version: str) -> VoiceVersion:
        """One version of a voice, or a 404."""
        voice = self.get(session, name)
        for v in voice.versions:
            if v.version == version:
                return v
        known = ", ".join(v.version for v in voice.versions)
        raise RegistryError(404, f"voice '{name}' has no version {version!r} (versions: {known})")

    def resolve(
        self, session: Session, name: str, version: str | None
    ) -> tuple[str | None, str | None]:
        """The exact version and pool a task for ``name`` must use.

        Returns:
            ``(version, pool)``: ``version`` as asked (checked) or the voice's default; both
            ``None`` for a built-in voice.
        """
        voice = session.scalars(select(Voice).where(Voice.name == name)).first()
        if voice is None:
            return None, None
        if version is not None and version not in {v.version for v in voice.versions}:
            raise RegistryError(422, f"voice '{name}' has no version {version!r}")
        return version or voice.default_version, voice.pool

    # -- changing ------------------------------------------------------------------------------

    def check_pool(self, pool: str) -> str:
        known = set(POOLS_DEFAULT) | set(self.settings.torchserve_pools)
        if pool not in known:
            raise RegistryError(422, f"unknown pool {pool!r}; pools: {', '.join(sorted(known))}")
        return pool

    def set_default(self, name: str, version: str) -> Voice:
        """Make ``version`` the one new requests for ``name`` get (TorchServe's set-default)."""
        with self.write_lock, self.session_factory() as session:
            voice = self.get(session, name)
            self.version(session, name, version)
            previous = voice.default_version
            voice.default_version = version
            voice.updated_at = utcnow()
            session.flush()
            try:
                self.serve(voice)
            except RegistryError:
                session.rollback()
                raise
            session.commit()
        self.write_catalog()
        log.info("voice %s: default version %s -> %s", name, previous, version)
        return voice

    def rollback(self, name: str, to: str | None = None) -> Voice:
        """Make the version before the current default (or ``to``) the default again."""
        with self.session_factory() as session:
            voice = self.get(session, name)
            current = int(voice.default_version or 0)
            older = [v.number for v in voice.versions if v.number < current]
        if to is None:
            if not older:
                raise RegistryError(
                    409,
                    f"voice '{name}' is at its first version {current}; nothing to roll back to",
                )
            to = str(max(older))
        return self.set_default(name, to)

    def configure(
        self,
        name: str,
        *,
        workers: int | None = None,
        batch_size: int | None = None,
        max_batch_delay_ms: int | None = None,
        pool: str | None = None,
    ) -> tuple[Voice, list[str]]:
        """Change serving settings: workers at once (scale-workers); batch size and delay for
        versions registered from now on (TorchServe fixes them at registration); pool moves the
        voice to another TorchServe pool (registered there, tasks follow)."""
        with self.write_lock, self.session_factory() as session:
            voice = self.get(session, name)
            if pool is not None:
                voice.pool = self.check_pool(pool)
            for attr, value in (
                ("workers", workers),
                ("batch_size", batch_size),
                ("max_batch_delay_ms", max_batch_delay_ms),
            ):
                if value is not None:
                    setattr(voice, attr, value)
            voice.updated_at = utcnow()
            session.flush()
            try:
                changes = self.serve(voice)
            except RegistryError:
                session.rollback()
                raise
            session.commit()
        self.write_catalog()
        return voice, changes

    def health(self, name: str) -> dict[str, Any]:
        """What serves the voice and whether it is up: TorchServe's workers per version, or the
        versions loaded in-process."""
        with self.session_factory() as session:
            voice = self.get(session, name)
            pool = voice.pool
            default = voice.default_version
        if self.serves_in_process():
            loaded: list[str] = getattr(self.synthesizer, "loaded_versions", lambda _n: [])(name)
            return {
                "served_by": "in-process",
                "registered": True,
                "default_version": default,
                "versions": [{"version": v, "status": "loaded"} for v in loaded],
                "healthy": True,
            }
        client = self._management(pool)
        if client is None:
            return {"served_by": f"pool {pool} (voice-sync)", "registered": None, "healthy": None}
        try:
            state = voice_health(client, name)
        except ManagementError as e:
            return {"served_by": f"pool {pool}", "healthy": False, "error": str(e)}
        healthy = any(
            v["version"] == state["default_version"] and v["ready_workers"] > 0
            for v in state["versions"]
        )
        return {"served_by": f"pool {pool}", **state, "healthy": healthy}


class VoiceSyncService(BackgroundService):
    """One pass of :meth:`VoiceRegistry.sync_all` in the background, so that the API serves at
    once while TorchServe registers the voices (each registration loads a model: seconds)."""

    def __init__(self, registry: VoiceRegistry) -> None:
        super().__init__("voice-sync", daemon=True)
        self._registry = registry

    def run(self) -> None:
        """Serve every registered voice once; returns early after :meth:`stop`."""
        try:
            self._registry.sync_all(lambda: self.stopping)
        except Exception:  # a database or TorchServe outage: the next start tries again
            log.exception("serving the registered voices at start-up failed")
