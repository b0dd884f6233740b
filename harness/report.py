"""Reports: read the store into pandas and reduce it. Never builds or calls anything.

``load(DIR)`` returns one row per attempt with every stored field a user needs for
their own analysis (see docs/python-api.md); the table functions reduce it.
Seeds are epochs: an exam's score for one (model, seed) is the sum of its tasks'
points; the mean and range are over seeds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from tabulate import tabulate

from harness.exams import exam_dirs, load_exam
from harness.errors import ExamError
from harness.results import Outcome
from harness.store import Store, open_existing

OUTCOME_ORDER = [o.value for o in Outcome]


def current_grader_hashes() -> dict[tuple[str, int], str]:
    """Grader hash of every exam installed now, by (exam id, version)."""
    out: dict[tuple[str, int], str] = {}
    for path in exam_dirs().values():
        try:
            exam = load_exam(path)
        except ExamError:
            continue
        out[(exam.id, exam.version)] = exam.grader_hash
    return out


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        v = json.loads(text)
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


def _speed(timings: dict[str, Any], usage: dict[str, Any], wall_s: float | None) -> tuple[Any, Any, str]:
    """Decode and prefill tok/s from llama.cpp timings, else usage / wall time."""
    dec = timings.get("predicted_per_second")
    pre = timings.get("prompt_per_second")
    if isinstance(dec, (int, float)):
        return float(dec), (float(pre) if isinstance(pre, (int, float)) else None), "timings"
    toks = usage.get("completion_tokens")
    if isinstance(toks, (int, float)) and wall_s:
        return float(toks) / wall_s, None, "usage/wall"
    return None, None, "none"


def load(directory: Path | str, *, grader_hashes: dict[tuple[str, int], str] | None = None) -> pd.DataFrame:
    """One row per attempt. The grade shown is the current grader's when it exists,
    else the newest one (``grade_current`` says which)."""
    store = open_existing(Path(directory))
    try:
        return _load(store, current_grader_hashes() if grader_hashes is None else grader_hashes)
    finally:
        store.close()


def _load(store: Store, hashes: dict[tuple[str, int], str]) -> pd.DataFrame:
    rows = []
    for a in store.query("SELECT * FROM attempts ORDER BY id"):
        grades = store.query("SELECT * FROM grades WHERE attempt_id=? ORDER BY id DESC", (a["id"],))
        cur = hashes.get((a["exam"], a["exam_version"]))
        g = next((x for x in grades if x["grader_hash"] == cur), grades[0] if grades else None)
        timings = _json(a["timings_json"])
        usage = _json(a["usage_json"])
        dec, pre, src = _speed(timings, usage, a["wall_s"])
        checks: dict[str, str] = {}
        if g is not None:
            for c in store.query("SELECT name, status FROM checks WHERE grade_id=? ORDER BY ord", (g["id"],)):
                checks[c["name"]] = c["status"]
        outcome = g["outcome"] if g is not None else (
            Outcome.ENDPOINT_ERROR.value if a["gen_outcome"] == "endpoint_error" else None)
        details = _json(g["details_json"]) if g is not None else {}
        rows.append({
            "attempt_id": a["id"], "run_id": a["run_id"], "model": a["model"], "exam": a["exam"],
            "exam_version": a["exam_version"], "task": a["task"], "seed": a["seed"],
            "created_at": a["created_at"], "gen_outcome": a["gen_outcome"], "finish_reason": a["finish_reason"],
            "outcome": outcome,
            "points": g["points"] if g is not None else None,
            "max_points": g["max_points"] if g is not None else None,
            "built": "build_s" in details,
            "explanation": g["explanation"] if g is not None else a["error"],
            "grader_hash": g["grader_hash"] if g is not None else None,
            "grade_current": g is not None and g["grader_hash"] == cur,
            "checks": checks,
            "decode_tps": dec, "prefill_tps": pre, "tps_source": src,
            "completion_tokens": usage.get("completion_tokens"), "prompt_tokens": usage.get("prompt_tokens"),
            "cache_n": timings.get("cache_n"), "wall_s": a["wall_s"],
            "sampling": _json(a["sampling_json"]),
            "extraction_method": a["extraction_method"], "extraction_note": a["extraction_note"],
            "content": a["content"], "reasoning_content": a["reasoning_content"],
            "extracted_code": a["extracted_code"], "error": a["error"],
        })
    return pd.DataFrame(rows)


def seed_scores(df: pd.DataFrame) -> pd.DataFrame:
    """Exam score per (model, exam, version, seed): sum over tasks; seeds with an
    endpoint error or a grading error in any task are incomplete and left out."""
    if df.empty:
        return pd.DataFrame(columns=["model", "exam", "exam_version", "seed", "score", "max", "complete"])
    g = df.groupby(["model", "exam", "exam_version", "seed"], sort=False)
    out = g.agg(score=("points", "sum"), max=("max_points", "sum"),
                complete=("outcome", lambda s: all(o is not None and Outcome(o).counts_against_model for o in s)))
    return out.reset_index()


def _fmt(x: float) -> str:
    return f"{x:.1f}" if abs(x - round(x)) > 1e-9 else f"{x:.0f}"


def exam_table(df: pd.DataFrame, exam: str) -> tuple[list[str], list[list[str]], float]:
    """Rows of the per-exam table: Model | Mean | Range | Builds | Tok/s | Outcomes."""
    sub = df[df["exam"] == exam]
    seeds = seed_scores(sub)
    max_pts = float(sub["max_points"].dropna().max() if sub["max_points"].notna().any() else 0)
    # The exam max is the per-seed sum of task maxima.
    per_seed_max = seeds["max"].max() if not seeds.empty else max_pts
    header = ["Model", "Mean", "Range", "Builds", "Tok/s", "Outcomes"]
    rows = []
    for model, msub in sub.groupby("model", sort=False):
        ss = seeds[(seeds["model"] == model) & seeds["complete"]]
        counted = msub[msub["outcome"].map(lambda o: o is not None and Outcome(o).counts_against_model)]
        built = int(counted["built"].sum())
        tps = msub["decode_tps"].dropna()
        approx = (msub.loc[tps.index, "tps_source"] != "timings").any() if len(tps) else False
        counts = msub["outcome"].fillna("ungraded").value_counts()
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: _order(kv[0])))
        if len(ss):
            mean = ss["score"].mean()
            mean_s = f"{mean:.1f}"
            range_s = f"{_fmt(ss['score'].min())}–{_fmt(ss['score'].max())}"
        else:
            mean, mean_s, range_s = -1.0, "n/a", "n/a"
        tps_s = "n/a" if not len(tps) else (("~" if approx else "") + f"{tps.mean():.1f}")
        rows.append((mean, -(ss["score"].std(ddof=0) if len(ss) > 1 else 0.0), [
            str(model), mean_s, range_s, f"{built}/{len(counted)}", tps_s, outcomes]))
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
    return header, [r[2] for r in rows], float(per_seed_max)


def _order(outcome: str) -> int:
    return OUTCOME_ORDER.index(outcome) if outcome in OUTCOME_ORDER else len(OUTCOME_ORDER)


def markdown(df: pd.DataFrame) -> str:
    """The report as markdown: one table per exam (and version)."""
    if df.empty:
        return "No attempts stored yet.\n"
    parts = []
    for (exam, version), _ in df.groupby(["exam", "exam_version"], sort=False):
        sub = df[(df["exam"] == exam) & (df["exam_version"] == version)]
        header, rows, mx = exam_table(sub, exam)
        seeds = sorted(sub["seed"].unique())
        hashes = sorted({h for h in sub["grader_hash"].dropna()})
        stale = int((~sub["grade_current"]).sum())
        parts.append(f"## {exam} v{version} (/{_fmt(mx)}; seeds {', '.join(map(str, seeds))})\n")
        parts.append(tabulate(rows, headers=header, tablefmt="github", disable_numparse=True))
        note = f"\nMean and Range are over seeds of the per-seed exam score; Builds counts attempts whose code compiled; grader {', '.join(hashes) or 'n/a'}."
        if stale:
            note += f" {stale} attempt(s) graded by an older grader: run `sweep regrade`."
        parts.append(note + "\n")
    return "\n".join(parts)
