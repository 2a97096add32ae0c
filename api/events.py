"""Live updates: from the events exchange to each browser's SSE stream.

Every API replica binds its own queue to the events fan-out exchange (see
:mod:`messaging.transport`); whatever arrives there is handed to this process's :class:`EventHub`,
which fans it out to the SSE subscribers of that project. Hand-over from the broker's thread to
the event loop goes through ``loop.call_soon_threadsafe``: asyncio queues are not thread-safe.

Events are notifications, not state: a subscriber that falls behind is told to resync (it is
sent a fresh snapshot) instead of the hub buffering without bound. Results are stored on several
threads (and replicas), so their events can arrive out of order; the progress counters they carry
are the stored totals after each result, so a client keeps the highest it has seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from contract.messages import EventMessage
from messaging.types import MessagePublisher, PublishError

log = logging.getLogger(__name__)

SUBSCRIBER_BUFFER = 256
RESYNC = EventMessage(type="resync", project_id=0)
"""Put in a subscriber's queue in place of the events it missed: send a fresh snapshot."""


class EventHub:
    """In-memory, per-project fan-out of events to asyncio subscribers."""

    def __init__(self, *, buffer: int = SUBSCRIBER_BUFFER) -> None:
        self._buffer = buffer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[int, set[asyncio.Queue[EventMessage]]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop`` (the server's event loop; called at start-up)."""
        self._loop = loop

    def subscriber_count(self, project_id: int | None = None) -> int:
        """Open subscriptions (for one project, or all)."""
        if project_id is not None:
            return len(self._subscribers.get(project_id, ()))
        return sum(len(s) for s in self._subscribers.values())

    @asynccontextmanager
    async def subscribe(self, project_id: int) -> AsyncIterator[asyncio.Queue[EventMessage]]:
        """A queue that receives the project's events while the block runs."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        q: asyncio.Queue[EventMessage] = asyncio.Queue(self._buffer)
        self._subscribers.setdefault(project_id, set()).add(q)
        try:
            yield q
        finally:
            subscribers = self._subscribers.get(project_id)
            if subscribers is not None:
                subscribers.discard(q)
                if not subscribers:
                    del self._subscribers[project_id]

    def publish_threadsafe(self, event: EventMessage) -> None:
        """Deliver ``event`` from any thread (the broker's consumer thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # RuntimeError: the loop closed meanwhile, the server is shutting down.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.dispatch, event)

    def dispatch(self, event: EventMessage) -> None:
        """Deliver ``event`` to the project's subscribers (on the event loop's thread)."""
        for q in list(self._subscribers.get(event.project_id, ())):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                # A slow client: drop what it has not read and have it resync from a snapshot.
                while not q.empty():
                    q.get_nowait()
                q.put_nowait(RESYNC)


class EventSender:
    """Publishes events to the fan-out exchange from a thread of its own.

    Producers (the result consumer, request handlers) only enqueue, so a slow or unreachable
    broker never delays an ack or a response. Events are best-effort: when the broker is down
    they are dropped after the publisher's retries (the UI's snapshot on reconnect repairs that).
    """

    def __init__(self, publisher: MessagePublisher, *, capacity: int = 10_000) -> None:
        self._publisher = publisher
        self._queue: queue.Queue[EventMessage | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def start(self) -> threading.Thread:
        """Start publishing in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="event-sender", daemon=True)
        self._thread.start()
        return self._thread

    def send(self, event: EventMessage) -> None:
        """Queue ``event`` for publishing; never blocks."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def stop(self, timeout: float = 5.0) -> None:
        """Publish what is queued (up to ``timeout``), then stop."""
        if self._thread is None:
            return
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self._publisher.publish_event(event)
            except PublishError as e:
                self.dropped += 1
                log.warning("event %s for project %d dropped: %s", event.type, event.project_id, e)
