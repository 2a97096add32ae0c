"""The thread life cycle of every background consumer, written once.

:class:`messaging.consumer.Consumer` (RabbitMQ), :class:`messaging.memory.MemoryConsumer`
(in-process) and the API's outbox relay run a loop in a thread of their own; the app starts them,
asks whether they are attached (readiness), and stops and joins them at shutdown. Subclasses write
:meth:`BackgroundService.run` and say when they are attached with :meth:`_set_connected`.
"""

from __future__ import annotations

import threading


class BackgroundService:
    """A loop in a background thread: ``start`` → ``run`` until ``stop`` → ``join``.

    Args:
        thread_name: The thread's name (shown by ``py-spy``, faulthandler and logs).
        daemon: Whether the thread may be abandoned at interpreter exit.
    """

    def __init__(self, thread_name: str, *, daemon: bool = False) -> None:
        self.thread_name = thread_name
        self._daemon = daemon
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        """Whether the service is attached to its source right now (for health checks)."""
        return self._connected.is_set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until attached; ``False`` after ``timeout`` seconds."""
        return self._connected.wait(timeout)

    def start(self) -> threading.Thread:
        """Run :meth:`run` in a background thread and return the thread."""
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=self._daemon)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Ask :meth:`run` to return once in-flight work is settled. Safe from any thread and
        from a signal handler."""
        self._stop.set()
        self._wake()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a thread started by :meth:`start`; ``True`` when it has finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run(self) -> None:
        """The loop; returns after :meth:`stop`."""
        raise NotImplementedError

    def _set_connected(self, attached: bool) -> None:
        if attached:
            self._connected.set()
        else:
            self._connected.clear()

    def _wake(self) -> None:
        """Hook: interrupt a blocking wait in :meth:`run` so that a stop is seen at once."""
