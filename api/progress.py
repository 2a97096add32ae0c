"""Conversion progress and its estimated time to completion: pure arithmetic, no database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Progress:
    """Where a conversion stands.

    Attributes:
        total: Segments in the conversion.
        done: Segments with audio.
        failed: Segments that ended with an error.
        queued: Segments still waiting or being synthesized.
        percent: Finished (done or failed) segments as a percentage, 0–100.
        rate_per_s: Segments finished per second since the start, when any finished.
        eta_s: Seconds until the rest is finished at that rate; 0 when finished; ``None`` before
            the first segment finished (no rate to go by yet).
        finished: Whether every segment is done or failed.
    """

    total: int
    done: int
    failed: int
    queued: int
    percent: float
    rate_per_s: float | None
    eta_s: float | None
    finished: bool


def compute_progress(
    *,
    total: int,
    done: int,
    failed: int,
    started_at: datetime,
    now: datetime,
    finished_at: datetime | None = None,
) -> Progress:
    """Progress of a conversion from its counters and clock times.

    The ETA assumes the rate observed so far (finished segments over elapsed time) holds for the
    remaining segments: simple, and honest about warm-up, since it only improves as work flows.

    Args:
        total: Segments in the conversion.
        done: Finished with audio.
        failed: Finished with an error.
        started_at: When the conversion started.
        now: The current time (same time zone awareness as ``started_at``).
        finished_at: When it finished, if it did; the rate is then measured up to that time.
    """
    finished_count = min(total, done + failed)
    queued = max(0, total - finished_count)
    finished = queued == 0 or finished_at is not None
    percent = 100.0 if total == 0 else round(100.0 * finished_count / total, 1)
    end = finished_at or now
    elapsed = max(0.0, (end - started_at).total_seconds())
    rate = finished_count / elapsed if finished_count and elapsed > 0 else None
    if finished:
        eta: float | None = 0.0
    elif rate:
        eta = round(queued / rate, 1)
    else:
        eta = None
    return Progress(
        total=total,
        done=done,
        failed=failed,
        queued=queued,
        percent=percent,
        rate_per_s=round(rate, 3) if rate else None,
        eta_s=eta,
        finished=finished,
    )
