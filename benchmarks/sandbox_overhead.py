"""Sandbox overhead: median wall time to grade one answer with the bubblewrap
sandbox versus the plain level (same builds, same checks, same driver process).

    python benchmarks/sandbox_overhead.py [--exam scraper-resilience] [--runs 10]

Prints per-level median and p90 and the ratio bwrap / plain (goal: <= 1.10).
Runs alternate between levels so machine load affects both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.exams.exam import find_exam  # noqa: E402
from harness.grade.grading import grade_source  # noqa: E402
from harness.runtime import gotool, sandbox  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exam", default="scraper-resilience")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()

    exam = find_exam(args.exam)
    task = exam.tasks[0]
    source = exam.read(task.reference)
    tc = gotool.resolve()
    tc.prewarm(race=tc.race_available())
    times: dict[str, list[float]] = {"bwrap": [], "plain": []}
    scores: dict[str, set[float]] = {"bwrap": set(), "plain": set()}
    for i in range(args.runs * 2):
        level = "bwrap" if i % 2 == 0 else "plain"
        os.environ["SWEEP_ISOLATION"] = level
        sandbox.reset()
        t = time.monotonic()
        g = grade_source(exam, task, source, tc)
        times[level].append(time.monotonic() - t)
        scores[level].add(g.points)
    print(f"exam {exam.id} task {task.id}: {args.runs} gradings per level, alternating")
    for level, ts in times.items():
        ts.sort()
        p90 = ts[min(len(ts) - 1, int(0.9 * len(ts)))]
        print(f"  {level:<6} median {statistics.median(ts):.2f}s  p90 {p90:.2f}s  scores {sorted(scores[level])}")
    ratio = statistics.median(times["bwrap"]) / statistics.median(times["plain"])
    print(f"  ratio bwrap/plain (median): {ratio:.3f}  (goal <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
