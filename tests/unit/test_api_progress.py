"""Conversion progress and ETA: pure arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.progress import compute_progress

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_no_rate_before_the_first_segment_finishes() -> None:
    p = compute_progress(total=10, done=0, failed=0, started_at=T0, now=T0 + timedelta(seconds=5))

    assert (p.queued, p.percent, p.rate_per_s, p.eta_s, p.finished) == (10, 0.0, None, None, False)


def test_eta_extrapolates_the_observed_rate() -> None:
    # 4 finished in 8 s → 0.5/s; 6 left → 12 s.
    p = compute_progress(total=10, done=3, failed=1, started_at=T0, now=T0 + timedelta(seconds=8))

    assert p.queued == 6
    assert p.percent == 40.0
    assert p.rate_per_s == 0.5
    assert p.eta_s == 12.0
    assert not p.finished


def test_finished_conversion_has_zero_eta_and_rate_up_to_its_end() -> None:
    p = compute_progress(
        total=4,
        done=3,
        failed=1,
        started_at=T0,
        now=T0 + timedelta(hours=1),
        finished_at=T0 + timedelta(seconds=2),
    )

    assert (p.percent, p.eta_s, p.finished, p.rate_per_s) == (100.0, 0.0, True, 2.0)


def test_empty_conversion_is_complete() -> None:
    p = compute_progress(total=0, done=0, failed=0, started_at=T0, now=T0)

    assert (p.percent, p.queued, p.finished, p.eta_s) == (100.0, 0, True, 0.0)


def test_counts_beyond_total_never_go_negative() -> None:
    p = compute_progress(total=2, done=3, failed=0, started_at=T0, now=T0 + timedelta(seconds=1))

    assert p.queued == 0
    assert p.percent == 100.0
