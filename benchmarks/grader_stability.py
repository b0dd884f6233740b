"""Is the scraper-resilience grader deterministic on a busy machine?

Grades the reference solution ``--reference-runs`` times, and the baseline, every
known-bad variant and every alternative correct answer (``good/*.go``, expected to
score full marks) ``--variant-runs`` times each, byte-identical source every time,
while one busy-loop process per CPU core keeps the machine saturated (``--no-load``
turns that off). For each it prints the score histogram, the number of gradings
whose failing checks differ from the most common set ("flips") and from the
manifest's declared set ("mismatches"), grading times, and the check that took
longest (by its median seconds; EvictionRandom since v2). Every variant in the
manifest and every file in good/ is included, so new ones need no change here.
Exit status 1 if any grading differs from the manifest.

    python benchmarks/grader_stability.py                                # 100 / 20, loaded
    python benchmarks/grader_stability.py --reference-runs 10 --variant-runs 3   # quick
    python benchmarks/grader_stability.py --only reference fifo --no-load
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.exams.exam import find_exam  # noqa: E402
from harness.grade.grading import grade_source  # noqa: E402
from harness.grade.validate import Expectation, expectations, source_of  # noqa: E402
from harness.runtime import gotool  # noqa: E402

# A pure-Python busy loop that also ends when its parent (this script) is gone.
BUSY_LOOP = """
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
"""


def start_load(n: int) -> list[subprocess.Popen[bytes]]:
    """One busy loop per core, each in its own session."""
    return [subprocess.Popen([sys.executable, "-c", BUSY_LOOP], start_new_session=True) for _ in range(n)]


def stop_load(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run_one(exam, task, e: Expectation, runs: int, tc) -> dict[str, object]:  # noqa: ANN001
    source = source_of(exam, e.file)
    points: collections.Counter[float] = collections.Counter()
    sets: collections.Counter[frozenset[str]] = collections.Counter()
    durations: list[float] = []
    check_s: collections.defaultdict[str, list[float]] = collections.defaultdict(list)
    mismatches: list[str] = []
    for i in range(runs):
        g = grade_source(exam, task, source, tc)
        failing = frozenset(c.name for c in g.checks if not c.passed)
        points[g.points] += 1
        sets[failing] += 1
        durations.append(g.duration_s)
        for name, sec in dict(g.details.get("check_seconds") or {}).items():
            check_s[name].append(float(sec))
        if failing != e.fail or abs(g.points - e.points) > 1e-6:
            extra = sorted(failing - e.fail)
            detail = "; ".join(f"{n}: {g.check(n).detail[:160]}" for n in extra)
            mismatches.append(f"run {i + 1}: {g.points:g} failing {sorted(failing)} {detail}")
            print(f"  MISMATCH {e.name}: {mismatches[-1]} (check seconds {g.details.get('check_seconds')})",
                  file=sys.stderr, flush=True)
        print(f"  {e.name} {i + 1}/{runs}: {g.points:g} in {g.duration_s:.2f}s", file=sys.stderr, flush=True)
    modal = sets.most_common(1)[0][0]
    slowest = max(check_s, key=lambda n: statistics.median(check_s[n]), default="")
    return {
        "name": e.name,
        "expected": e.points,
        "points": dict(sorted(points.items())),
        "flips": sum(n for s, n in sets.items() if s != modal),
        "mismatches": mismatches,
        "median_s": statistics.median(durations),
        "p90_s": pct(durations, 0.9),
        "slowest": f"{slowest} {statistics.median(check_s[slowest]):.2f}s" if slowest else "-",
        "runs": runs,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference-runs", type=int, default=100)
    ap.add_argument("--variant-runs", type=int, default=20, help="per variant and for the baseline")
    ap.add_argument("--no-load", action="store_true", help="do not start the busy-loop processes")
    ap.add_argument("--load-procs", type=int, default=os.cpu_count() or 2, help="busy loops (default: one per core)")
    ap.add_argument("--only", nargs="*",
                    help="names to run: reference, baseline:starter, a variant name, good:<name>")
    ap.add_argument("--exam", default="scraper-resilience")
    args = ap.parse_args(argv)

    exam = find_exam(args.exam)
    task = exam.tasks[0]
    tc = gotool.resolve()
    tc.prewarm(race=True)
    todo = expectations(exam, task) + [
        Expectation(exam.id, task.id, f"good:{p.stem}", str(p.relative_to(exam.root)), task.points, frozenset())
        for p in sorted((exam.root / "good").glob("*.go"))
    ]
    todo = [e for e in todo if not args.only or e.name in args.only]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    load = [] if args.no_load else start_load(args.load_procs)
    started = time.monotonic()
    rows = []
    try:
        for e in todo:
            runs = args.reference_runs if e.name == "reference" else args.variant_runs
            rows.append(run_one(exam, task, e, runs, tc))
    finally:
        stop_load(load)
    wall = time.monotonic() - started

    print(f"exam {exam.id} v{exam.version} grader {exam.grader_hash}; {os.cpu_count()} cores; "
          f"load: {len(load)} busy-loop processes; load average at end {os.getloadavg()[0]:.2f}; "
          f"wall {wall / 60:.1f} min")
    print(f"{'name':24} {'runs':>4} {'expect':>6}  {'points histogram':24} {'flips':>5} {'mismatch':>8} "
          f"{'median':>7} {'p90':>6}  slowest check (median)")
    bad = 0
    for r in rows:
        hist = " ".join(f"{p:g}:{n}" for p, n in r["points"].items())  # type: ignore[union-attr]
        mism = len(r["mismatches"])  # type: ignore[arg-type]
        bad += mism
        print(f"{r['name']:24} {r['runs']:>4} {r['expected']:>6g}  {hist:24} {r['flips']:>5} {mism:>8} "
              f"{r['median_s']:>6.2f}s {r['p90_s']:>5.2f}s  {r['slowest']}")
    for r in rows:
        for m in r["mismatches"]:  # type: ignore[union-attr]
            print(f"MISMATCH {r['name']}: {m}")
    total = sum(r["runs"] for r in rows)  # type: ignore[misc]
    print(f"{total} gradings, {bad} differing from the manifest")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
