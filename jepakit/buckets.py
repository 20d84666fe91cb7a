"""Token-count buckets: a few fixed lengths that masks are snapped to.

A compiler builds one graph per input shape; JEPA masks draw new token counts
every batch, so a compiled step would recompile (or run slower dynamic-shape
code) every step. A masker that snaps its lengths to a small fixed set of
*levels* lets one graph per level serve a whole run.

Levels are chosen to disturb the masks least: :func:`best_levels` picks the
``count`` lengths that minimise the mean distance a drawn length moves to reach
its level, over a sample of lengths the masker draws without buckets. Context
lengths move *down* (a context may drop extra patches, as the batch-minimum
equalisation already does; it cannot gain patches it does not have); target
block areas move to the *nearest* level.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

Rule = Literal["down", "nearest"]


def snap(value: int, levels: Sequence[int], rule: Rule) -> int:
    """``value`` moved to its level: the largest level <= ``value`` (``down``; ``value``
    itself when it is below every level), or the closest level (``nearest``, ties to
    the lower)."""
    if rule == "down":
        below = [lv for lv in levels if lv <= value]
        return max(below) if below else value
    return min(levels, key=lambda lv: (abs(lv - value), lv))


def _segment_cost(values: list[int], weights: list[float], i: int, j: int,
                  rule: Rule) -> tuple[float, int]:
    """Cost and level of one group ``values[i:j]`` (sorted) served by one level."""
    if rule == "down":
        level = values[i]
        return sum(w * (v - level) for v, w in zip(values[i:j], weights[i:j])), level
    # the (lower) weighted median minimises the summed absolute distance
    half, seen, level = sum(weights[i:j]) / 2, 0.0, values[i]
    for v, w in zip(values[i:j], weights[i:j]):
        seen += w
        if seen >= half:
            level = v
            break
    return sum(w * abs(v - level) for v, w in zip(values[i:j], weights[i:j])), level


def best_levels(samples: Iterable[int], count: int, rule: Rule) -> tuple[int, ...]:
    """The ``count`` levels (drawn from the sample values) that minimise the total
    distance the samples move under ``rule``: optimal 1-D grouping by dynamic
    programming over the distinct sorted values. Fewer levels when the samples hold
    fewer distinct values. With ``down`` the smallest sample is always a level."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    tally = Counter(int(s) for s in samples)
    if not tally:
        raise ValueError("no samples to choose levels from")
    values = sorted(tally)
    weights = [float(tally[v]) for v in values]
    n, k = len(values), min(count, len(tally))
    cost = {(i, j): _segment_cost(values, weights, i, j, rule)
            for i in range(n) for j in range(i + 1, n + 1)}
    inf = float("inf")
    # best[g][j]: least cost of serving values[:j] with g groups; prev[g][j]: where the last starts
    best = [[inf] * (n + 1) for _ in range(k + 1)]
    prev = [[0] * (n + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for g in range(1, k + 1):
        for j in range(g, n + 1):
            for i in range(g - 1, j):
                c = best[g - 1][i] + cost[i, j][0]
                if c < best[g][j]:
                    best[g][j], prev[g][j] = c, i
    levels, j = [], n
    for g in range(k, 0, -1):
        i = prev[g][j]
        levels.append(cost[i, j][1])
        j = i
    return tuple(sorted(levels))
