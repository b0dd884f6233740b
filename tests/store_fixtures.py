"""Results stores written row by row through harness.store.db.Store, for report and
compare tests whose numbers are computed by hand (no model, no Go build)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness import report
from harness.results import CellKey, CheckResult, CheckStatus, Grade, Outcome
from harness.store.db import Store

EXAM, VERSION, HASH = "fx", 1, "fxgrader0001"
CHECKS = ("build", "runs", "case:a")


@dataclass
class Cell:
    """One attempt. ``passed``: names of the checks it passed (1 point each, out of
    every check in ``checks``). Without a passed build the answer did not compile."""

    model: str
    seed: int
    passed: tuple[str, ...] = CHECKS
    task: str = "hello"
    exam: str = EXAM
    version: int = VERSION
    checks: tuple[str, ...] = CHECKS
    code: str | None = None              # extracted code; default differs per seed
    tps: float | None = 40.0
    prefill: float | None = 400.0
    gen_outcome: str = "ok"              # "endpoint_error" stores no grade
    extra: dict = field(default_factory=dict)
    predicted_n: int | None = None       # timings.predicted_n / prompt_n, when given
    prompt_n: int | None = None
    built: bool | None = None            # None: built when "build" is passed


def write_store(out: Path, cells: list[Cell]) -> Path:
    store = Store(out)
    try:
        run = store.start_run(command="fixture", config={}, tool_version="test", go_version=None,
                              go_source=None, host={})
        for c in cells:
            key = CellKey(c.model, c.exam, c.version, c.task, c.seed)
            if c.gen_outcome == "endpoint_error":
                store.save_attempt(run, key, sampling={"temperature": 1.0}, request_id=None,
                                   gen_outcome="endpoint_error", error="HTTP 503")
                continue
            code = c.code if c.code is not None else f"package main // {c.model} {c.task} seed {c.seed}\n"
            timings = {"predicted_per_second": c.tps, "prompt_per_second": c.prefill} if c.tps is not None else None
            if timings is not None:
                timings.update({k: v for k, v in (("predicted_n", c.predicted_n), ("prompt_n", c.prompt_n))
                                if v is not None})
            aid = store.save_attempt(run, key, sampling={"temperature": 1.0}, request_id=None,
                                     gen_outcome="ok", finish_reason="stop", content="```go\n" + code + "```",
                                     usage={"completion_tokens": 100, "prompt_tokens": 50}, timings=timings,
                                     wall_s=2.0, extracted_code=code, extraction_method="fence")
            built = "build" in c.passed if c.built is None else c.built
            results = tuple(
                CheckResult.passing(n, 1.0) if n in c.passed else
                (CheckResult(n, CheckStatus.FAIL if built or n == "build" else CheckStatus.NOT_RUN, 0.0, 1.0, ""))
                for n in c.checks)
            outcome = Outcome.RAN if built else Outcome.BUILD_FAILED
            grade = Grade(outcome, float(len(c.passed)), float(len(c.checks)), results, "fixture", HASH, 0.1,
                          {"build_s": 0.1} if built else {})
            store.save_grade(aid, grade, go_version="go1.0")
    finally:
        store.close()
    return out


def frame(out: Path, cells: list[Cell]) -> pd.DataFrame:
    write_store(out, cells)
    versions = {(c.exam, c.version) for c in cells}
    return report.load(out, grader_hashes={v: HASH for v in versions})


def scores(model: str, per_seed: list[int], *, start_seed: int = 1, **kw) -> list[Cell]:
    """One cell per seed; ``per_seed[i]`` checks passed, in CHECKS order."""
    return [Cell(model, start_seed + i, CHECKS[:k], **kw) for i, k in enumerate(per_seed)]
