"""Which projects' tasks a worker drops unsynthesized: those whose conversion was paused or
cancelled, or that were deleted, as the API announces on the events exchange.

The API withdraws a stopped conversion's tasks that are still in its outbox; the ones already on
the tasks queue reach the workers, which answer them with a ``skipped`` result instead of
synthesizing them (the API then leaves the sentence waiting as "not converted"). A worker that
starts after the announcement does not know of it: it synthesizes such a task, and the API keeps
the audio (nothing is wasted, nothing is lost).
"""

from __future__ import annotations

import logging
import threading

from contract.messages import EventMessage

log = logging.getLogger(__name__)


class StoppedProjects:
    """The set of stopped projects, fed by events (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped: set[int] = set()

    def observe(self, event: EventMessage) -> None:
        """Take note of a ``conversion`` event (its ``state``), a ``segment`` event of a running
        conversion (the project runs: repairs a missed resume), or a ``deleted`` event."""
        if event.type == "deleted":
            stop = True
        else:
            conversion = (
                event.data
                if event.type == "conversion"
                else event.data.get("conversion")
                if event.type == "segment"
                else None
            )
            if not isinstance(conversion, dict) or conversion.get("kind") != "project":
                return  # a one-sentence fix neither stops nor resumes the book
            state = conversion.get("state")
            if state == "running":
                stop = False
            elif state in ("paused", "cancelled") and event.type == "conversion":
                stop = True
            else:
                return
        with self._lock:
            if stop:
                self._stopped.add(event.project_id)
            else:
                self._stopped.discard(event.project_id)
        log.info("project %d: tasks %s", event.project_id, "dropped" if stop else "resumed")

    def __contains__(self, project_id: object) -> bool:
        with self._lock:
            return project_id in self._stopped
