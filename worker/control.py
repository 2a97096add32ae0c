"""Which tasks a worker drops unsynthesized: those of a conversion that was paused or cancelled,
and those of a project that was deleted, as the API announces on the events exchange.

The API withdraws a stopped conversion's tasks that are still in its outbox; the ones already on
the tasks queue reach the workers, which answer them with a ``skipped`` result instead of
synthesizing them (the API then leaves the sentence waiting as "not converted"). Tasks of other
conversions of the same project (a one-sentence fix made meanwhile) go on. A worker that starts
after the announcement does not know of it: it synthesizes such a task, and the API keeps the
audio (nothing is wasted, nothing is lost). Any event that shows the conversion running again
(its ``conversion`` event, or a ``segment`` event that carries it) lifts the stop, so a missed
"resumed" is repaired by the next result.
"""

from __future__ import annotations

import logging
import threading

from contract.messages import EventMessage, TaskMessage

log = logging.getLogger(__name__)


class StoppedTasks:
    """The stopped conversions and the deleted projects, fed by events (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conversions: set[int] = set()
        self._projects: set[int] = set()

    def observe(self, event: EventMessage) -> None:
        """Take note of a ``conversion`` event (its ``state``), a ``segment`` event of a running
        conversion, or a ``deleted`` event."""
        if event.type == "deleted":
            with self._lock:
                self._projects.add(event.project_id)
            log.info("project %d deleted: its tasks are dropped", event.project_id)
            return
        conversion = (
            event.data
            if event.type == "conversion"
            else event.data.get("conversion")
            if event.type == "segment"
            else None
        )
        if not isinstance(conversion, dict) or not isinstance(conversion.get("id"), int):
            return
        ident, state = conversion["id"], conversion.get("state")
        if state == "running":
            # Running: resumed, or a new conversion. SQLite (the embedded mode) may give a new
            # project or conversion the id of a deleted one, so a running one clears both.
            with self._lock:
                known = ident in self._conversions or event.project_id in self._projects
                self._conversions.discard(ident)
                self._projects.discard(event.project_id)
            if known:
                log.info("conversion %d of project %d runs", ident, event.project_id)
        elif state in ("paused", "cancelled") and event.type == "conversion":
            with self._lock:
                self._conversions.add(ident)
            log.info("conversion %d %s: its tasks are dropped", ident, state)

    def conversion_stopped(self, conversion_id: int) -> bool:
        """Whether the conversion's tasks are being dropped."""
        with self._lock:
            return conversion_id in self._conversions

    def drops(self, task: TaskMessage) -> bool:
        """Whether ``task`` is to be answered ``skipped`` without synthesis."""
        with self._lock:
            return task.project_id in self._projects or (
                task.conversion_id is not None and task.conversion_id in self._conversions
            )
