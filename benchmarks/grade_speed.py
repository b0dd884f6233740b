"""How long does grading one answer take (scraper-resilience by default; ``--exam``
picks another)?

Grades one answer (the reference by default) ``--runs`` times with a warm Go build
cache: the builds (normal and -race; for a gotest exam the answer's build and the
test binary's ``go test -c``) and all the checks. Each run appends a unique
comment, so the answer's own package is compiled afresh every time, as a new model
answer would be (only the standard library comes from the cache). One warm-up
grading is not counted. Prints each run and the median / p90 of the total and of
its parts; the target is a median of at most 3 s on a 2-core machine (``--target``;
parallel-copier's is 5 s).

    python benchmarks/grade_speed.py                 # 20 runs of the reference
    python benchmarks/grade_speed.py --runs 5 --file exams/scraper-resilience/bad/fifo.go
    python benchmarks/grade_speed.py --exam parallel-copier --target 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.exams.exam import find_exam  # noqa: E402
from harness.grade.grading import grade_source  # noqa: E402
from harness.runtime import gotool  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--exam", default="scraper-resilience")
    ap.add_argument("--file", help="Go source to grade (default: the task's reference)")
    ap.add_argument("--target", type=float, default=3.0, help="exit 1 when the median is above this (seconds)")
    args = ap.parse_args(argv)

    exam = find_exam(args.exam)
    task = exam.tasks[0]
    path = Path(args.file) if args.file else exam.path(task.reference)
    source = path.read_text(encoding="utf-8")
    tc = gotool.resolve()
    tc.prewarm(race=True)
    grade_source(exam, task, source + f"\n// warm-up {uuid.uuid4()}\n", tc)

    rows: list[dict[str, float]] = []
    for i in range(args.runs):
        t0 = time.monotonic()
        g = grade_source(exam, task, source + f"\n// run {i} {uuid.uuid4()}\n", tc)
        total = time.monotonic() - t0
        checks = max((g.details.get("check_seconds") or {"-": 0.0}).values())
        row = {"total": total, "build": float(g.details.get("build_s", 0.0)),
               "race_build": float(g.details.get("race_build_s", 0.0)),
               "test_build": float(g.details.get("test_build_s", 0.0)), "checks": float(checks),
               "points": g.points}
        rows.append(row)
        print(f"run {i + 1:>3}: {total:5.2f}s  build {row['build']:.2f}s  race build {row['race_build']:.2f}s  "
              f"test build {row['test_build']:.2f}s  checks {row['checks']:.2f}s  ({g.points:g}/{g.max_points:g})",
              flush=True)

    print(f"\n{exam.id} v{exam.version} ({path.name}), {args.runs} runs, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")
    for key in ("total", "build", "race_build", "test_build", "checks"):
        vals = [r[key] for r in rows]
        print(f"  {key:10} median {statistics.median(vals):5.2f}s  p90 {pct(vals, 0.9):5.2f}s  "
              f"max {max(vals):5.2f}s")
    med = statistics.median(r["total"] for r in rows)
    print(f"median {med:.2f}s vs target {args.target:.1f}s: {'OK' if med <= args.target else 'ABOVE TARGET'}")
    return 0 if med <= args.target else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
