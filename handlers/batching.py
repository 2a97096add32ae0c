"""How a batch of sentences is cut into padded model calls.

A padded call costs the longest item's length for every item in it, plus a fixed cost per call
(kernel launches and host/device synchronisation: measured at about 100 ms per call for an
MMS-size VITS voice on an H200, whatever the batch size up to 8). Sorting by length and cutting
the sorted list into consecutive runs is optimal for a cost of the form
``calls * overhead + sum(len(run) * max(run))``, so :func:`plan_calls` finds the cheapest cut by
dynamic programming over the sorted lengths (O(n * max_items); a TorchServe batch is at most a
few hundred items).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence


def plan_calls(lengths: Sequence[int], *, max_items: int, call_overhead_tokens: int) -> list[range]:
    """Cut length-sorted items into consecutive runs, one padded model call each.

    Args:
        lengths: Input lengths in tokens, sorted ascending.
        max_items: Most items in one call (memory bound).
        call_overhead_tokens: What one extra call costs, in padded tokens. 0 makes every call
            as full as ``max_items`` allows (the fewest calls); larger values trade calls for
            less padding only where the padding saved is worth more than a call.

    Returns:
        Index ranges into ``lengths`` that cover it in order.

    Raises:
        ValueError: ``lengths`` is not sorted, ``max_items`` < 1 or the overhead is negative.
    """
    if max_items < 1 or call_overhead_tokens < 0:
        raise ValueError("max_items must be at least 1 and call_overhead_tokens at least 0")
    if any(a > b for a, b in itertools.pairwise(lengths)):
        raise ValueError("lengths must be sorted ascending")
    n = len(lengths)
    if call_overhead_tokens == 0:
        return [range(i, min(i + max_items, n)) for i in range(0, n, max_items)]
    # best[j]: cheapest cost of the first j items; cut[j]: where the last run of that plan starts.
    best = [0] * (n + 1)
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        best[j] = -1
        for i in range(max(0, j - max_items), j):
            cost = best[i] + call_overhead_tokens + (j - i) * lengths[j - 1]
            if best[j] < 0 or cost < best[j]:
                best[j], cut[j] = cost, i
    runs: list[range] = []
    j = n
    while j > 0:
        runs.append(range(cut[j], j))
        j = cut[j]
    return runs[::-1]
