"""The background services of batch jobs, started and stopped with the API's runtime.

- :class:`~api.jobs.JobFinisher`: writes the outputs of jobs whose conversion has finished;
- :class:`~api.webhooks.WebhookDispatcher`: delivers signed callbacks, with retries;
- :class:`AudioSweeper`: deletes audio objects no segment refers to (audio in the object store);
- :class:`~api.ingest.BucketPoller`: when ``VOXMILL_INGEST_POLL_S`` > 0.

Every one of them is safe with several API replicas: each claims its work in the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from api.audio_store import AudioStore, sweep_orphans
from api.ingest import BucketPoller
from api.jobs import JobFinisher
from api.storage import ObjectError
from api.webhooks import WebhookDispatcher
from messaging.service import BackgroundService

if TYPE_CHECKING:
    from api.runtime import Runtime

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 30.0


class AudioSweeper(BackgroundService):
    """Runs :func:`api.audio_store.sweep_orphans` every ``VOXMILL_AUDIO_SWEEP_S`` seconds."""

    def __init__(self, runtime: Runtime, store: AudioStore) -> None:
        super().__init__("audio-sweeper", daemon=True)
        self._runtime = runtime
        self._store = store

    def run(self) -> None:
        """Sweep until :meth:`stop`."""
        self._set_connected(True)
        s = self._runtime.settings
        while not self._stop.wait(s.audio_sweep_s):
            try:
                sweep_orphans(
                    self._runtime.session_factory, self._store, grace_s=s.audio_orphan_grace_s
                )
            except (SQLAlchemyError, ObjectError) as e:
                log.warning("audio sweep failed: %s", e)
        self._set_connected(False)


@dataclass
class JobServices:
    """The started services (see the module docstring)."""

    finisher: JobFinisher
    dispatcher: WebhookDispatcher
    others: list[BackgroundService] = field(default_factory=list)

    @classmethod
    def start(cls, runtime: Runtime) -> JobServices:
        """Build and start the services for ``runtime``."""
        settings = runtime.settings
        dispatcher = WebhookDispatcher(runtime.session_factory, settings)
        finisher = JobFinisher(
            runtime.session_factory, runtime.objects, settings, on_event=dispatcher.wake
        )
        others: list[BackgroundService] = []
        if runtime.audio_store is not None:
            others.append(AudioSweeper(runtime, runtime.audio_store))
        if settings.ingest_poll_s > 0 and settings.ingest_bucket:
            others.append(BucketPoller(runtime))
        services = cls(finisher, dispatcher, others)
        for service in services.all():
            service.start()
        return services

    def all(self) -> list[BackgroundService]:
        """Every service."""
        return [self.finisher, self.dispatcher, *self.others]

    def stop(self) -> None:
        """Stop and join every service."""
        for service in self.all():
            service.stop()
        for service in self.all():
            if not service.join(STOP_TIMEOUT_S):
                log.warning("%s did not stop within %.0fs", service.thread_name, STOP_TIMEOUT_S)
