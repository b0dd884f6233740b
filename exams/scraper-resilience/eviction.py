"""Telling uniform-random eviction from deterministic policies, with known error.

Setting (EvictionRandom): the buffer of size B starts empty, the sink is down for a
window of N >= 2B+2 consecutive batches (positions 0..N-1, oldest first), then
comes back; S is the set of window batches delivered afterwards (the survivors).

Deterministic policies leave tell-tale survivors:

* oldest-first (FIFO) eviction keeps the newest B: every survivor is among the
  last ``B + 2`` positions (2 positions of slack);
* newest-first (LIFO) eviction keeps the first B-1 and the last one, and
  "drop the incoming batch when full" keeps the first B: every survivor is among
  the first ``B + 2`` or the last 2 positions.

A correct uniform-random eviction is misjudged only if, by chance, no batch from
the forbidden positions survives. ``p_no_survivor`` computes that probability
exactly (a Markov chain over how many forbidden batches the buffer holds);
``misjudge_probability`` adds both patterns (a union bound). For B = 24 and
N = 50 it is below 4e-8 (see docs/exams/scraper-resilience.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

SLACK = 2


def classify(window: Sequence[int], survivors: Iterable[int], size: int) -> str | None:
    """None if the survivors look random; otherwise which deterministic policy
    they match, as a sentence for the check's detail."""
    pos = {seq: i for i, seq in enumerate(window)}
    n = len(window)
    idx = sorted(pos[s] for s in survivors if s in pos)
    if not idx:
        return "no batch from the outage survived"
    last = size + SLACK
    if all(i >= n - last for i in idx):
        return (f"oldest-first eviction: all {len(idx)} surviving batches are among the newest {last} of the "
                f"{n} scraped during the outage (a uniformly random eviction keeps older ones too)")
    if all(i < last or i >= n - SLACK for i in idx):
        return (f"newest-first eviction (or dropping new batches when full): all {len(idx)} surviving batches "
                f"are among the first {last} or the last {SLACK} of the {n} scraped during the outage")
    return None


def p_no_survivor(n: int, size: int, forbidden: set[int], *, incoming_may_lose: bool = False) -> Fraction:
    """Probability that uniform-random eviction, over n insertions into a buffer
    of ``size`` that starts empty, leaves no item whose position is in
    ``forbidden``. Eviction picks one of the ``size`` buffered items uniformly;
    with ``incoming_may_lose`` it picks among the buffered items and the incoming
    one (size + 1 choices)."""
    dist: dict[int, Fraction] = {0: Fraction(1)}
    for i in range(n):
        add = 1 if i in forbidden else 0
        nxt: dict[int, Fraction] = {}

        def put(c: int, p: Fraction) -> None:
            nxt[c] = nxt.get(c, Fraction(0)) + p

        for c, p in dist.items():
            if i < size:
                put(c + add, p)
                continue
            keep = Fraction(1)
            if incoming_may_lose:
                put(c, p / (size + 1))
                keep = Fraction(size, size + 1)
            if c:
                put(c - 1 + add, p * keep * Fraction(c, size))
            put(c + add, p * keep * Fraction(size - c, size))
        dist = nxt
    return dist.get(0, Fraction(0))


def misjudge_probability(n: int, size: int, *, incoming_may_lose: bool = False) -> float:
    """Upper bound on P(classify() names a policy | uniform-random eviction)."""
    last = size + SLACK
    fifo = p_no_survivor(n, size, set(range(n - last)), incoming_may_lose=incoming_may_lose)
    lifo = p_no_survivor(n, size, set(range(last, n - SLACK)), incoming_may_lose=incoming_may_lose)
    return float(fifo + lifo)
