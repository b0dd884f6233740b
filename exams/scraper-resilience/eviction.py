"""Telling uniformly random eviction from any other policy, with known error rates.

Setting (EvictionRandom): the buffer of size B starts empty, the sink is down for
a window of n >= 2B consecutive batches (oldest first), then comes back; the window
batches delivered afterwards are the survivors. This is repeated for W windows
(each starts with an empty buffer, so the windows are independent).

The statistic of one window is Y, the number of survivors among its **newest B**
batches. Because n >= 2B, the buffer is full when the first of those arrives, and
each of the B insertions that follow evicts one buffered batch; Y only depends on
how many of those B evictions hit a batch from the newest B. Under uniformly random
eviction that is a Markov chain over how many of the newest B the buffer holds, so
Y's distribution is exact (``young_survivor_distribution``) and the same for every
n >= 2B. The test adds Y over the W windows and fails when the sum T is in either
tail: ``T <= lo`` (too few young survivors: newest-first eviction, dropping new
batches when full, any bias towards evicting new batches) or ``T >= hi`` (too many:
oldest-first eviction, eviction only among the older half, any bias towards evicting
old batches). ``bounds`` picks lo and hi so that each tail has probability below
``alpha / 2`` under uniform eviction; ``false_fail_probability`` gives the exact
total. Power against other policies: benchmarks/eviction_power.py, and the figures
in docs/exams/scraper-resilience.md.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction


def young_survivor_distribution(size: int, *, incoming_may_lose: bool = False) -> list[Fraction]:
    """P(Y = y) for y = 0..size under uniformly random eviction: how many of the
    newest ``size`` batches of a window of >= 2*size survive. Eviction picks one of
    the ``size`` buffered batches; with ``incoming_may_lose`` it picks among the
    buffered batches and the incoming one (size + 1 choices)."""
    dist: dict[int, Fraction] = {0: Fraction(1)}  # young batches in the (full) buffer
    for _ in range(size):
        nxt: dict[int, Fraction] = {}

        def put(c: int, p: Fraction) -> None:
            nxt[c] = nxt.get(c, Fraction(0)) + p

        for c, p in dist.items():
            keep = Fraction(1)
            if incoming_may_lose:
                put(c, p / (size + 1))  # the incoming batch is the one dropped
                keep = Fraction(size, size + 1)
            if c:
                put(c, p * keep * Fraction(c, size))  # a young one evicted, a young one added
            put(c + 1, p * keep * Fraction(size - c, size))
        dist = nxt
    return [dist.get(y, Fraction(0)) for y in range(size + 1)]


def sum_distribution(dist: Sequence[Fraction], windows: int) -> list[Fraction]:
    """Distribution of the sum of ``windows`` independent draws from ``dist``."""
    out = [Fraction(1)]
    for _ in range(windows):
        nxt = [Fraction(0)] * (len(out) + len(dist) - 1)
        for i, p in enumerate(out):
            if p:
                for j, q in enumerate(dist):
                    nxt[i + j] += p * q
        out = nxt
    return out


@dataclass(frozen=True)
class Bounds:
    """Fail when the sum T <= lo or T >= hi."""

    size: int
    windows: int
    lo: int
    hi: int
    expected: float
    false_fail: float   # P(T <= lo or T >= hi) under uniformly random eviction


@functools.lru_cache(maxsize=8)
def bounds(size: int, windows: int, alpha: float) -> Bounds:
    """The widest-passing thresholds whose two tails each have probability below
    ``alpha / 2`` under uniformly random eviction, both as the prompt words it
    (evict one of the B buffered batches, then add) and when the incoming batch is
    a candidate too (B + 1 choices; young batches then survive a little less, so
    the low tail is taken from that model)."""
    dist = sum_distribution(young_survivor_distribution(size), windows)
    low = sum_distribution(young_survivor_distribution(size, incoming_may_lose=True), windows)
    half = Fraction(alpha) / 2
    lo, acc = -1, Fraction(0)
    while acc + low[lo + 1] < half:
        lo += 1
        acc += low[lo]
    hi, acc = len(dist), Fraction(0)
    while acc + dist[hi - 1] < half:
        hi -= 1
        acc += dist[hi]
    expected = float(sum(t * p for t, p in enumerate(dist)))
    return Bounds(size, windows, lo, hi, expected, _tails(dist, lo, hi))


def false_fail_probability(size: int, windows: int, lo: int, hi: int, *, incoming_may_lose: bool = False) -> float:
    """Exact P(T <= lo or T >= hi) under uniformly random eviction."""
    return _tails(sum_distribution(young_survivor_distribution(size, incoming_may_lose=incoming_may_lose), windows),
                  lo, hi)


def _tails(dist: Sequence[Fraction], lo: int, hi: int) -> float:
    return float(sum(p for t, p in enumerate(dist) if t <= lo or t >= hi))


def young_survivors(window: Sequence[int], survivors: Iterable[int], size: int) -> int:
    """Y of one window: how many of its newest ``size`` batches were delivered."""
    young = set(window[-size:])
    return sum(1 for s in set(survivors) if s in young)


def judge(young_counts: Sequence[int], b: Bounds) -> str | None:
    """None if the windows' young-survivor counts are consistent with uniformly
    random eviction; otherwise a sentence for the check's detail."""
    total = sum(young_counts)
    if b.lo < total < b.hi:
        return None
    per = ", ".join(map(str, young_counts))
    what = (f"of the newest {b.size} batches of each of the {len(young_counts)} outages, {total} of "
            f"{b.size * len(young_counts)} were delivered ({per}); uniformly random eviction delivers "
            f"{b.lo + 1}..{b.hi - 1} (expected {b.expected:.1f}; outside with probability {b.false_fail:.1e})")
    if total >= b.hi:
        return f"{what}: eviction favours old batches (e.g. oldest-first, or only among the older part of the buffer)"
    return f"{what}: eviction favours new batches (e.g. newest-first, or dropping the new batch when full)"
