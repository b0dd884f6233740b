"""How often does EvictionRandom fail a given eviction policy?

The check (exams/scraper-resilience/eviction.py) runs W outages of n >= 2B batches
into a buffer of B, counts in each how many of the newest B batches survive (Y), and
fails when the sum T is outside (lo, hi). Its false-fail rate under uniformly random
eviction is exact (``eviction.bounds``). For other policies this script simulates
``--windows-sim`` single outages per policy, takes the empirical distribution of Y,
and convolves it W times: the chance that the check fails the policy, with the
per-window distribution estimated rather than T sampled directly (so small tail
probabilities are resolved). A 95 % interval comes from repeating that on
``--boot`` bootstrap resamples of the simulated windows.

    python benchmarks/eviction_power.py                 # B=24, W=8, n=50, 200k windows per policy

Policies (the buffer is a slice, oldest first; the new batch is appended after the
eviction): uniform; oldest-first; newest-first; older-half (uniform among the
oldest floor(len/2)); older-three-quarters; never-newest (uniform among all but the
newest buffered); never-oldest; biased-oldest (index = min of two uniform draws);
mild-bias-oldest (with probability 1/4 the oldest, else uniform); incoming-may-lose
(uniform among the B buffered and the incoming one).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _eviction():  # noqa: ANN202 - the exam's module, loaded as grading loads it
    from harness.exams import package
    from harness.exams.exam import find_exam

    return package.load_module(find_exam("scraper-resilience"), "eviction")


# policy(rng, buffered) -> index to evict, or -1 to drop the incoming batch
POLICIES: dict[str, Callable[[random.Random, int], int]] = {
    "uniform": lambda r, n: r.randrange(n),
    "oldest-first": lambda r, n: 0,
    "newest-first": lambda r, n: n - 1,
    "older-half": lambda r, n: r.randrange(max(1, n // 2)),
    "older-three-quarters": lambda r, n: r.randrange(max(1, 3 * n // 4)),
    "never-newest": lambda r, n: r.randrange(n - 1),
    "never-oldest": lambda r, n: 1 + r.randrange(n - 1),
    "biased-oldest": lambda r, n: min(r.randrange(n), r.randrange(n)),
    "mild-bias-oldest": lambda r, n: 0 if r.random() < 0.25 else r.randrange(n),
    "incoming-may-lose": lambda r, n: r.randrange(n + 1),  # n: drop the incoming batch
}


def young_counts(policy: str, size: int, n: int, windows: int, rng: random.Random) -> np.ndarray:
    pick = POLICIES[policy]
    out = np.zeros(windows, dtype=np.int64)
    for w in range(windows):
        buf: list[int] = []
        for item in range(n):
            if len(buf) >= size:
                k = pick(rng, len(buf))
                if policy == "incoming-may-lose" and k == len(buf):
                    continue  # the incoming batch is the one evicted
                buf.pop(k)
            buf.append(item)
        out[w] = sum(1 for x in buf if x >= n - size)
    return out


def fail_probability(pmf: np.ndarray, windows: int, lo: int, hi: int) -> tuple[float, float]:
    """(P(fail), P(pass)), each summed over its own region (no 1 - x cancellation)."""
    dist = np.array([1.0])
    for _ in range(windows):
        dist = np.convolve(dist, pmf)
    t = np.arange(len(dist))
    outside = (t <= lo) | (t >= hi)
    return float(dist[outside].sum()), float(dist[~outside].sum())


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=24)
    ap.add_argument("--windows", type=int, default=8, help="outages per grading (W)")
    ap.add_argument("--n", type=int, default=50, help="batches per outage (>= 2B)")
    ap.add_argument("--windows-sim", type=int, default=200_000, help="simulated outages per policy")
    ap.add_argument("--boot", type=int, default=200, help="bootstrap resamples for the interval")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--only", nargs="*", help="policies to run")
    args = ap.parse_args(argv)

    ev = _eviction()
    b = ev.bounds(args.size, args.windows, 1e-6)
    exact = np.array([float(p) for p in ev.young_survivor_distribution(args.size)])
    lose = ev.false_fail_probability(args.size, args.windows, b.lo, b.hi, incoming_may_lose=True)
    print(f"B={args.size} W={args.windows} n={args.n}: fail when T <= {b.lo} or T >= {b.hi} "
          f"(uniform: E[T] = {b.expected:.2f}, exact false-fail {b.false_fail:.3g}; incoming-may-lose: {lose:.3g})")
    print(f"{'policy':22} {'E[Y]':>6} {'P(fail)':>10} {'P(pass)':>10}  {'95% interval of P(fail)':>24}")
    rng = random.Random(args.seed)
    brng = np.random.default_rng(args.seed)
    for name in POLICIES:
        if args.only and name not in args.only:
            continue
        ys = young_counts(name, args.size, args.n, args.windows_sim, rng)
        pmf = np.bincount(ys, minlength=args.size + 2)[: args.size + 2] / len(ys)
        p, q = fail_probability(pmf, args.windows, b.lo, b.hi)
        boots = []
        for _ in range(args.boot):
            sample = brng.choice(ys, size=len(ys), replace=True)
            bp = np.bincount(sample, minlength=args.size + 2)[: args.size + 2] / len(sample)
            boots.append(fail_probability(bp, args.windows, b.lo, b.hi)[0])
        lo_ci, hi_ci = np.quantile(boots, [0.025, 0.975])
        print(f"{name:22} {ys.mean():6.2f} {p:10.6g} {q:10.3g}  [{lo_ci:10.6g}, {hi_ci:10.6g}]", flush=True)
    if "uniform" in POLICIES and (not args.only or "uniform" in args.only):
        check = fail_probability(exact, args.windows, b.lo, b.hi)[0]
        mean = sum(y * p for y, p in enumerate(ev.young_survivor_distribution(args.size)))
        print(f"(exact uniform pmf through the same convolution: {check:.3g}; exact E[Y] = {float(mean):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
