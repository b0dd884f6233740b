"""Reports, step 1: the store as a pandas DataFrame, one row per attempt.

``load(DIR)`` returns every stored field a user needs for their own analysis (see
docs/python-api.md); ``harness.report.reduce`` and ``harness.report.render`` reduce
and render it. Reads go through ``harness.store.queries`` (two queries whatever the
number of attempts); nothing is built or called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.report import speed
from harness.results import Outcome
from harness.store import queries
from harness.store.db import open_existing
from harness.store.queries import ServedRow, StoredAttempt


def load(directory: Path | str, *, grader_hashes: dict[tuple[str, int], str] | None = None) -> pd.DataFrame:
    """One row per attempt, every turn of every cell (``turn``: 1 = the first answer;
    ``harness.report.turns``). The grade shown is the current grader's when it exists,
    else the newest one (``grade_current`` says which). The current grader of an
    exam version is the one the store's latest run recorded (``harness.store.queries.current_graders``),
    not the one installed now; ``grader_hashes`` overrides it."""
    store = open_existing(Path(directory))
    try:
        attempts = queries.attempts(store, grader_hashes)
        served = _served(queries.served(store))
    finally:
        store.close()
    return pd.DataFrame([_row(a, served) for a in attempts])


def _served(rows: list[ServedRow]) -> dict[tuple[int | None, str], ServedRow]:
    """What each (run, model) really served, and under (None, model) the newest such
    record of the model."""
    out: dict[tuple[int | None, str], ServedRow] = {}
    for r in rows:
        out[(r.run_id, r.model)] = r
        out[(None, r.model)] = r
    return out


def _row(a: StoredAttempt, served: dict[tuple[int | None, str], ServedRow]) -> dict[str, Any]:
    ident = served.get((a.run_id, a.key.model)) or served.get((None, a.key.model))
    g = a.grade
    timings = queries.json_object(a.timings_json)
    usage = queries.json_object(a.usage_json)
    sp = speed.per_answer(timings, usage, a.wall_s)
    checks = {c.name: c.status for c in g.checks} if g is not None else {}
    check_details = {c.name: {"status": c.status, "points": c.points, "max_points": c.max_points,
                              "detail": c.detail} for c in g.checks} if g is not None else {}
    outcome = g.outcome if g is not None else (
        Outcome.ENDPOINT_ERROR.value if a.gen_outcome == "endpoint_error" else None)
    details = g.details if g is not None else {}
    return {
        "attempt_id": a.id, "run_id": a.run_id, "model": a.key.model, "exam": a.key.exam,
        "exam_version": a.key.exam_version, "task": a.key.task, "seed": a.key.seed, "turn": a.key.turn,
        "created_at": a.created_at, "gen_outcome": a.gen_outcome, "finish_reason": a.finish_reason,
        "outcome": outcome,
        "points": g.points if g is not None else None,
        "max_points": g.max_points if g is not None else None,
        "built": "build_s" in details,
        "explanation": g.explanation if g is not None else a.error,
        "grader_hash": g.grader_hash if g is not None else None,
        "grade_current": a.grade_current is True,
        "checks": checks, "check_details": check_details,
        "grade_details": details, "graded_at": g.graded_at if g is not None else None,
        "grade_duration_s": g.duration_s if g is not None else None,
        "grade_go_version": g.go_version if g is not None else None,
        "decode_tps": sp.decode_tps, "prefill_tps": sp.prefill_tps, "tps_source": sp.source,
        "completion_tokens": usage.get("completion_tokens"), "prompt_tokens": usage.get("prompt_tokens"),
        "cache_n": sp.cache_n, "prompt_n": sp.prompt_n, "draft_n": sp.draft_n,
        "draft_accepted": sp.draft_accepted, "ttft_s": a.ttft_s, "wall_s": a.wall_s,
        "sampling": queries.json_object(a.sampling_json), "request_id": a.request_id,
        "usage": usage, "timings": timings,
        "extraction_method": a.extraction_method, "extraction_note": a.extraction_note,
        # the answer may be kept only in its raw response (harness.store.queries reads it back)
        "content": a.content, "reasoning_content": a.reasoning_content,
        "extracted_code": a.extracted_code, "error": a.error,
        "predicted_n": sp.predicted_n,
        # what the server ran for this attempt's run (model_props): GGUF, quant, size, warnings
        "served_gguf": ident.gguf if ident else None, "served_quant": ident.quant if ident else None,
        "served_size_bytes": ident.size_bytes if ident else None,
        "serving_warnings": list(ident.warnings) if ident else [],
    }
