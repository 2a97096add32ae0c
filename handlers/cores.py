"""How many CPU threads one voice model call may use: all the cores when it runs alone on this
machine, one when other model calls run beside it.

Why: onnxruntime's intra-op threads make one sentence about 1.7× faster on 2 cores than one thread
does (the time to first audio of an interactive request), but two calls that each take both cores
oversubscribe the machine and lose about a fifth of the throughput of two one-thread calls
(bench/README.md, "Threads per model call"). A thread count fixed at load time cannot serve both:
the choice has to be made per call, from the number of calls in flight on the machine: in this
process (the embedded mode's API and its workers share one handler) and in the others (each
TorchServe model worker is its own process).

The count is kept in advisory file locks (``flock``) on a few slot files in one directory
per user: a call holds one slot while it runs, and runs alone when every other slot is free.
``flock`` is used rather than a shared-memory counter because the kernel drops a lock when its
holder dies, so a killed worker never leaves the count wrong; no library offers a
cross-process "how many are busy" count with that property. The check is a heuristic at the start
of each call: two calls that start at the same instant may both see the other, or at worst one
runs wide for one sentence beside a narrow one. A slot released within the last ``quiet_s``
counts as busy too: under steady load a worker is between two calls (encoding one answer,
reading the next request) for a few milliseconds only, and a call that started in that gap must
not take every core.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_directory() -> Path:
    """The slot directory shared by every voice process of this user on this machine."""
    return Path(tempfile.gettempdir()) / f"voxmill-cores-{os.getuid()}"


class CoreShare:
    """Counts the voice model calls running on this machine and says whether a call runs alone.

    Args:
        cores: Threads for a call that runs alone (default: :func:`machine_cores`).
        directory: The slot files' directory; every process that shares the cores must use the
            same one (default: :func:`default_directory`).
        slots: Calls counted at most; a call that finds every slot taken runs with one thread.
        quiet_s: A slot released this recently still counts as busy (see the module docstring).
    """

    def __init__(
        self,
        cores: int | None = None,
        directory: Path | None = None,
        *,
        slots: int = 8,
        quiet_s: float = 0.05,
    ) -> None:
        self.cores = max(1, cores or machine_cores())
        self.directory = directory or default_directory()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.slots = max(2, slots)
        self.quiet_s = quiet_s
        for slot in range(self.slots):
            path = self._path(slot)
            if not os.path.exists(path):
                os.close(self._open(slot))
                os.utime(path, (0, 0))  # never used: not "released just now"

    def _path(self, slot: int) -> str:
        return str(self.directory / f"slot-{slot}")

    def _open(self, slot: int) -> int:
        # A fresh open file description per use: flock locks belong to it, so two threads of one
        # process conflict like two processes do.
        return os.open(self._path(slot), os.O_RDWR | os.O_CREAT, 0o600)

    def _busy(self, slot: int, now: float | None = None) -> bool:
        """Held now, or (with ``now``) released less than ``quiet_s`` before it."""
        fd = self._open(slot)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            return now is not None and now - os.fstat(fd).st_mtime < self.quiet_s
        finally:
            os.close(fd)  # closing drops the shared lock taken to look

    def running(self) -> int:
        """How many calls hold a slot now (for logs and tests)."""
        return sum(self._busy(slot) for slot in range(self.slots))

    @contextlib.contextmanager
    def claim(self) -> Iterator[int]:
        """Hold a slot for one model call.

        Yields:
            The intra-op threads the call should use: :attr:`cores` when no other call holds a
            slot, else 1.
        """
        held: int | None = None
        mine = -1
        for slot in range(self.slots):
            fd = self._open(slot)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            held, mine = fd, slot
            break
        try:
            now = time.time()
            alone = held is not None and not any(
                self._busy(slot, now) for slot in range(self.slots) if slot != mine
            )
            yield self.cores if alone else 1
        finally:
            if held is not None:
                os.utime(held)  # "released just now", read by calls that start in the gap
                os.close(held)  # releases the lock
