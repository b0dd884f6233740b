"""Does grading hide behind generation? A sweep's wall time against its floor.

A scripted endpoint answers every go-basics prompt with the task's reference
solution after a fixed delay (``Reply(delay_s=...)``): generation then costs exactly
the sum of the delays, and grading (go build + the hidden cases) runs in the
sweep's thread pool meanwhile. The floor is that sum plus the grading of the last
answer, which nothing can overlap. The ratio wall / floor should be <= 1.05.

    python benchmarks/sweep_overlap.py                      # 3 tasks x 4 seeds, 1.0 s each
    python benchmarks/sweep_overlap.py --delay 0.5 --seeds 8 --workers 2
    python benchmarks/sweep_overlap.py --parallel 2        # a server with 2 slots

With ``--parallel N`` the scripted server has N slots and the sweep keeps N requests
in flight: generation then costs ceil(cells / N) delays, and that is the floor's
first term.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.config import RunConfig  # noqa: E402
from harness.exams.exam import find_exam  # noqa: E402
from harness.generate.client import ChatClient  # noqa: E402
from harness.generate.runner import Sweep  # noqa: E402
from harness.grade.validate import source_of  # noqa: E402
from harness.runtime import gotool  # noqa: E402
from harness.store.db import Store  # noqa: E402
from harness.wire import Sampling
from mock_server.llm import Reply, ScriptedLLM, scripted_fence  # noqa: E402


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--delay", type=float, default=1.0, help="seconds per generation (default 1.0)")
    ap.add_argument("--seeds", type=int, default=4, help="seeds per task (default 4)")
    ap.add_argument("--workers", type=int, default=2, help="grading workers (default 2)")
    ap.add_argument("--parallel", type=int, default=1, help="requests in flight (server slots; default 1)")
    ap.add_argument("--goal", type=float, default=1.05, help="exit 1 when the ratio is above this")
    args = ap.parse_args(argv)

    exam = find_exam("go-basics")
    by_prompt = {exam.render_prompt(t): t for t in exam.tasks}

    def answer(body: dict[str, Any]) -> Reply:
        task = by_prompt[body["messages"][-1]["content"]]
        return Reply(scripted_fence(source_of(exam, task.reference)), delay_s=args.delay)

    tc = gotool.resolve()
    tc.prewarm(race=tc.race_available())          # a sweep's CLI does this before the sweep too
    seeds = tuple(range(1, args.seeds + 1))
    with tempfile.TemporaryDirectory(prefix="sweep-overlap-") as tmp, ScriptedLLM({"bench": answer},
                                                                               total_slots=args.parallel) as llm:
        cfg = RunConfig(endpoint=llm.url, models=("bench",), exams=(exam.id,), seeds=seeds,
                        sampling=Sampling(temperature=1.0, max_tokens=4096), out_dir=Path(tmp),
                        grading_workers=args.workers, retries=0, request_timeout_s=60, parallel=args.parallel)
        store = Store(cfg.out_dir)
        try:
            with ChatClient(llm.url, timeout_s=60) as client:
                sweep = Sweep(cfg, store=store, exams=[exam], toolchain=tc, client=client)
                started = time.monotonic()
                summary = sweep.run()
                wall = time.monotonic() - started
            last = store.query("SELECT g.duration_s, g.outcome FROM grades g JOIN attempts a ON a.id = g.attempt_id"
                               " ORDER BY a.id DESC LIMIT 1")[0]
            grade_times = [r[0] for r in store.query("SELECT duration_s FROM grades")]
            outcomes = summary.outcomes
            in_flight = llm.max_in_flight
        finally:
            store.close()
    cells = len(seeds) * len(exam.tasks)
    delays = -(-cells // args.parallel) * args.delay       # ceil(cells / parallel) rounds of delays
    floor = delays + last["duration_s"]
    ratio = wall / floor
    print(f"cells:                    {cells} ({len(exam.tasks)} tasks x {len(seeds)} seeds), "
          f"{args.workers} grading worker(s), outcomes {dict(outcomes)}")
    print(f"requests in flight:       {in_flight} at most (--parallel {args.parallel})")
    print(f"generation delays:        {delays:.2f} s" + (f" ({cells} x {args.delay:g} s / {args.parallel} slots)"
                                                          if args.parallel > 1 else ""))
    print(f"last grading time:        {last['duration_s']:.2f} s "
          f"(grading per answer: mean {sum(grade_times) / len(grade_times):.2f} s, max {max(grade_times):.2f} s)")
    print(f"sweep wall time:          {wall:.2f} s")
    print(f"ratio wall / (delays + last grading): {ratio:.3f}  (goal <= {args.goal})")
    if not summary.ok or outcomes.get("ran", 0) != cells:
        print("error: the sweep did not grade every reference answer as ran", file=sys.stderr)
        return 2
    return 0 if ratio <= args.goal else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
