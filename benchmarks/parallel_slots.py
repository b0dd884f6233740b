"""Does `--parallel N` pay off on this machine? A real llama-server, the real sweep.

Starts the bundled llama-server and model (`sweep local install`) once with one
slot and once with N slots, and
sweeps the same cells through each: go-basics, ``--seeds`` seeds, ``--max-tokens``
tokens, streamed (so time to first token is measured too). Prints, per run, the
sweep's wall time, the tokens generated per second of wall time (all requests
together), the mean per-request decode speed the server reported, and the median
time to first token. On a GPU box slots usually raise the total; on a CPU-only
machine they share the same cores, and the figures say whether anything is gained.

    python benchmarks/parallel_slots.py                    # 1 vs 2 slots, 4 seeds, 256 tokens
    python benchmarks/parallel_slots.py --slots 3 --seeds 6
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import report  # noqa: E402
from harness.config import RunConfig  # noqa: E402
from harness.errors import LocalServerError  # noqa: E402
from harness.exams.exam import find_exam  # noqa: E402
from harness.generate.client import ChatClient  # noqa: E402
from harness.generate.local_server import LocalServer, find_model, find_server  # noqa: E402
from harness.generate.runner import Sweep  # noqa: E402
from harness.runtime import gotool  # noqa: E402
from harness.store.db import Store  # noqa: E402
from harness.wire import Sampling


def one_run(slots: int, seeds: tuple[int, ...], max_tokens: int, tc: gotool.Toolchain) -> dict[str, float]:
    exam = find_exam("go-basics")
    with tempfile.TemporaryDirectory(prefix=f"parallel-{slots}-") as tmp, \
            LocalServer(find_model(), binary=find_server(), parallel=slots) as srv:
        cfg = RunConfig(endpoint=srv.url, models=(srv.model_id,), exams=(exam.id,), seeds=seeds,
                        sampling=Sampling(temperature=1.0, max_tokens=max_tokens), out_dir=Path(tmp),
                        retries=0, request_timeout_s=600, parallel=slots, stream=True)
        store = Store(cfg.out_dir)
        try:
            with ChatClient(srv.url, timeout_s=600) as client:
                started = time.monotonic()
                summary = Sweep(cfg, store=store, exams=[exam], toolchain=tc, client=client).run()
                wall = time.monotonic() - started
        finally:
            store.close()
        df = report.load(cfg.out_dir)
    if not summary.ok:
        raise SystemExit(f"the {slots}-slot sweep failed: {summary.errors}")
    tokens = float(sum(u.get("completion_tokens", 0) for u in df["usage"]))
    return {"slots": slots, "cells": len(df), "wall_s": wall, "tokens": tokens,
            "total_tps": tokens / wall, "request_tps": float(df["decode_tps"].mean()),
            "ttft_s": float(statistics.median(df["ttft_s"].dropna()))}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slots", type=int, default=2, help="slots of the parallel run (default 2)")
    ap.add_argument("--seeds", type=int, default=4, help="seeds (default 4; 3 tasks each)")
    ap.add_argument("--max-tokens", type=int, default=256, help="max_tokens per answer (default 256)")
    args = ap.parse_args(argv)
    try:
        find_server(), find_model()
    except LocalServerError as e:
        print(f"error: {e.one_line()}", file=sys.stderr)
        return 2
    tc = gotool.resolve()
    tc.prewarm(race=tc.race_available())
    seeds = tuple(range(1, args.seeds + 1))
    rows = [one_run(n, seeds, args.max_tokens, tc) for n in (1, args.slots)]
    print(f"go-basics, {len(seeds)} seeds, max_tokens {args.max_tokens}, streamed; the sweep grades meanwhile")
    print(f"{'slots':>5} {'cells':>5} {'wall s':>7} {'tokens':>7} {'total tok/s':>11} {'per-request tok/s':>17} "
          f"{'TTFT s (median)':>15}")
    for r in rows:
        print(f"{r['slots']:>5} {r['cells']:>5} {r['wall_s']:>7.1f} {r['tokens']:>7.0f} {r['total_tps']:>11.1f} "
              f"{r['request_tps']:>17.1f} {r['ttft_s']:>15.2f}")
    print(f"speed-up of the total with {args.slots} slots: {rows[1]['total_tps'] / rows[0]['total_tps']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
