"""Cutting a length-sorted batch into padded model calls (handlers/batching.py)."""

from __future__ import annotations

import itertools

import pytest

from handlers.batching import plan_calls


def cost(lengths: list[int], runs: list[range], overhead: int) -> int:
    return sum(overhead + len(r) * lengths[r.stop - 1] for r in runs)


def test_no_overhead_fills_every_call() -> None:
    lengths = sorted([5, 7, 9, 30, 31, 80, 81, 82, 200])
    runs = plan_calls(lengths, max_items=4, call_overhead_tokens=0)
    assert [len(r) for r in runs] == [4, 4, 1]


def test_padding_worth_more_than_a_call_is_cut_away() -> None:
    # Four short sentences and two long ones: one call would pad the short ones to 200 tokens.
    lengths = [10, 11, 12, 12, 190, 200]
    runs = plan_calls(lengths, max_items=16, call_overhead_tokens=100)
    assert runs == [range(0, 4), range(4, 6)]
    # A call costing more than the padding it saves keeps them together.
    assert plan_calls(lengths, max_items=16, call_overhead_tokens=5000) == [range(0, 6)]


@pytest.mark.parametrize("overhead", [0, 1, 50, 400])
def test_runs_cover_the_items_in_order_within_the_size_limit(overhead: int) -> None:
    lengths = sorted([3, 3, 4, 8, 9, 15, 15, 16, 40, 41, 90, 95, 300])
    runs = plan_calls(lengths, max_items=5, call_overhead_tokens=overhead)
    assert [i for r in runs for i in r] == list(range(len(lengths)))
    assert all(1 <= len(r) <= 5 for r in runs)


def test_the_plan_is_the_cheapest_cut() -> None:
    lengths = [4, 6, 9, 20, 22, 23, 60, 61]
    overhead = 40
    best = min(
        cost(
            lengths,
            [range(a, b) for a, b in itertools.pairwise((0, *cuts, len(lengths)))],
            overhead,
        )
        for k in range(len(lengths))
        for cuts in itertools.combinations(range(1, len(lengths)), k)
    )
    runs = plan_calls(lengths, max_items=len(lengths), call_overhead_tokens=overhead)
    assert cost(lengths, runs, overhead) == best


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        plan_calls([5, 3], max_items=4, call_overhead_tokens=0)
    with pytest.raises(ValueError, match="max_items"):
        plan_calls([1], max_items=0, call_overhead_tokens=0)
    assert plan_calls([], max_items=4, call_overhead_tokens=10) == []
