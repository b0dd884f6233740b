"""Reports: read the store into pandas and reduce it. Never builds or calls anything.

``load(DIR)`` returns one row per attempt with every stored field a user needs for
their own analysis (see docs/python-api.md); the table functions reduce it.
Seeds are epochs: an exam's score for one (model, seed) is the sum of its tasks'
points; the mean and range are over seeds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import quant, speed, stats
from harness.quant import QuantInfo
from harness.results import Outcome
from harness.store import Store, open_existing
from harness.tables import Table

OUTCOME_ORDER = [o.value for o in Outcome]


def _json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        v = json.loads(text)
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


def load(directory: Path | str, *, grader_hashes: dict[tuple[str, int], str] | None = None) -> pd.DataFrame:
    """One row per attempt. The grade shown is the current grader's when it exists,
    else the newest one (``grade_current`` says which). The current grader of an
    exam version is the one the store's latest run recorded (``Store.current_graders``),
    not the one installed now; ``grader_hashes`` overrides it."""
    store = open_existing(Path(directory))
    try:
        if grader_hashes is None:
            grader_hashes = {k: r.grader_hash for k, r in store.current_graders().items()}
        return _load(store, grader_hashes)
    finally:
        store.close()


def _served(store: Store) -> dict[tuple[int | None, str], dict[str, Any]]:
    """What each (run, model) really served (``model_props``; harness.served), and
    under (None, model) the newest such record of the model."""
    out: dict[tuple[int | None, str], dict[str, Any]] = {}
    cols = {r["name"] for r in store.query("PRAGMA table_info(model_props)")}
    if "gguf" not in cols:
        return out
    for r in store.query("SELECT * FROM model_props ORDER BY id"):
        warnings = _json_list(r["warnings_json"])
        rec = {"gguf": r["gguf"], "quant": r["quant"], "size_bytes": r["size_bytes"], "warnings": warnings}
        out[(r["run_id"], r["model"])] = rec
        out[(None, r["model"])] = rec
    return out


def _json_list(text: str | None) -> list[str]:
    try:
        v = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(x) for x in v] if isinstance(v, list) else []


def _load(store: Store, hashes: dict[tuple[str, int], str]) -> pd.DataFrame:
    rows = []
    served = _served(store)
    for a in store.query("SELECT * FROM attempts ORDER BY id"):
        ident = served.get((a["run_id"], a["model"])) or served.get((None, a["model"])) or {}
        grades = store.query("SELECT * FROM grades WHERE attempt_id=? ORDER BY id DESC", (a["id"],))
        cur = hashes.get((a["exam"], a["exam_version"]))
        g = next((x for x in grades if x["grader_hash"] == cur), grades[0] if grades else None)
        timings = _json(a["timings_json"])
        usage = _json(a["usage_json"])
        sp = speed.per_answer(timings, usage, a["wall_s"])
        checks: dict[str, str] = {}
        check_details: dict[str, dict[str, Any]] = {}
        if g is not None:
            for c in store.query("SELECT * FROM checks WHERE grade_id=? ORDER BY ord", (g["id"],)):
                checks[c["name"]] = c["status"]
                check_details[c["name"]] = {"status": c["status"], "points": c["points"],
                                            "max_points": c["max_points"], "detail": c["detail"]}
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
            "checks": checks, "check_details": check_details,
            "grade_details": details, "graded_at": g["graded_at"] if g is not None else None,
            "grade_duration_s": g["duration_s"] if g is not None else None,
            "grade_go_version": g["go_version"] if g is not None else None,
            "decode_tps": sp.decode_tps, "prefill_tps": sp.prefill_tps, "tps_source": sp.source,
            "completion_tokens": usage.get("completion_tokens"), "prompt_tokens": usage.get("prompt_tokens"),
            "cache_n": sp.cache_n, "prompt_n": sp.prompt_n, "draft_n": sp.draft_n,
            "draft_accepted": sp.draft_accepted, "ttft_s": a["ttft_s"], "wall_s": a["wall_s"],
            "sampling": _json(a["sampling_json"]), "request_id": a["request_id"],
            "usage": usage, "timings": timings,
            "extraction_method": a["extraction_method"], "extraction_note": a["extraction_note"],
            # the answer may be kept only in its raw response (Store.answer_of)
            "content": (answer := store.answer_of(a))[0], "reasoning_content": answer[1],
            "extracted_code": a["extracted_code"], "error": a["error"],
            "predicted_n": sp.predicted_n,
            # what the server ran for this attempt's run (model_props): GGUF, quant, size, warnings
            "served_gguf": ident.get("gguf"), "served_quant": ident.get("quant"),
            "served_size_bytes": ident.get("size_bytes"), "serving_warnings": list(ident.get("warnings") or []),
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- reductions


def counts(outcome: Any) -> bool:
    """Whether an attempt with this outcome counts against the model (graded, and
    not an endpoint or grading error)."""
    return isinstance(outcome, str) and outcome in OUTCOME_ORDER and Outcome(outcome).counts_against_model


def works(checks: dict[str, str], built: bool) -> bool:
    """Built and passed at least one check other than the build itself."""
    return bool(built) and any(st == "pass" for name, st in checks.items() if name != "build")


def _tasks(df: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(df["task"]))


def seed_scores(df: pd.DataFrame) -> pd.DataFrame:
    """Exam score per (model, exam, version, seed): the sum over tasks. A seed is
    ``complete`` when every task of the exam has a grade that counts against the
    model; seeds with an endpoint or grading error, or a missing task, are not."""
    cols = ["model", "exam", "exam_version", "seed", "score", "max", "complete"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    n_tasks = df.groupby(["exam", "exam_version"])["task"].nunique().to_dict()
    rows = []
    for (model, exam, version, seed), g in df.groupby(["model", "exam", "exam_version", "seed"], sort=False):
        ok = all(counts(o) for o in g["outcome"]) and g["task"].nunique() == n_tasks[(exam, version)]
        rows.append((model, exam, version, seed, float(g["points"].fillna(0).sum()),
                     float(g["max_points"].fillna(0).sum()), ok))
    return pd.DataFrame(rows, columns=cols)


@dataclass(frozen=True)
class ModelSummary:
    """One model on one exam version: the row of the per-exam table."""

    model: str
    exam: str
    exam_version: int
    max_points: float                 # the exam's per-seed maximum
    scores: dict[int, float]          # per complete seed
    interval: stats.MeanInterval | None
    attempts: int                     # attempts that count against the model
    builds: int
    works: int
    outcomes: dict[str, int]
    decode_tps: float | None
    prefill_tps: float | None
    tps_approx: bool                  # usage/wall time instead of server timings
    prefill_tokens: float | None = None   # uncached prompt tokens per answer the prefill figure covers
    serving_warnings: tuple[str, ...] = ()   # e.g. a fallback chat template (harness.served)

    @property
    def mean(self) -> float | None:
        return float(np.mean(list(self.scores.values()))) if self.scores else None

    @property
    def variance(self) -> float:
        return float(np.var(list(self.scores.values()), ddof=1)) if len(self.scores) > 1 else 0.0

    @property
    def consistent(self) -> bool:
        """The same score on every seed (at least two seeds)."""
        return len(self.scores) >= 2 and len(set(self.scores.values())) == 1

    @property
    def highlighted(self) -> bool:
        """Shown in bold: consistent with a score above zero (a zero on every seed is
        consistent too, but bold would make it look like a winner)."""
        return self.consistent and (self.mean or 0.0) > 0

    def sort_key(self) -> tuple[float, float, str]:
        mean = self.mean
        return (-(mean if mean is not None else -1.0), self.variance, self.model)


def summarize(df: pd.DataFrame) -> list[ModelSummary]:
    """Per-model summaries of one exam version, best first: by mean, then lower
    variance across seeds, then name."""
    if df.empty:
        return []
    seeds = seed_scores(df)
    exam, version = df["exam"].iloc[0], int(df["exam_version"].iloc[0])
    full = seeds[seeds["complete"]]
    exam_max = float(full["max"].max()) if len(full) else float(seeds["max"].max())
    out = []
    for model, m in df.groupby("model", sort=False):
        ss = full[full["model"] == model]
        scores = {int(s): float(v) for s, v in zip(ss["seed"], ss["score"])}
        counted = m[m["outcome"].map(counts)]
        decode, approx = speed.mean_decode(m)
        prefill, prefill_tokens = speed.mean_prefill(m)
        warnings = list(dict.fromkeys(w for ws in m["serving_warnings"] for w in ws)) if "serving_warnings" in m \
            else []
        oc = m["outcome"].map(lambda o: o if isinstance(o, str) else "ungraded").value_counts()
        out.append(ModelSummary(
            model=str(model), exam=str(exam), exam_version=version, max_points=exam_max, scores=scores,
            interval=stats.mean_interval(list(scores.values()), 0.0, exam_max) if scores and exam_max > 0 else None,
            attempts=len(counted), builds=int(counted["built"].sum()),
            works=sum(works(c, b) for c, b in zip(counted["checks"], counted["built"])),
            outcomes={k: int(oc[k]) for k in sorted(oc.index, key=_order)},
            decode_tps=decode,
            prefill_tps=prefill, prefill_tokens=prefill_tokens,
            tps_approx=approx, serving_warnings=tuple(warnings),
        ))
    return sorted(out, key=ModelSummary.sort_key)


def check_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Per (model, task, check): attempts that passed it out of attempts that count.
    An attempt that never got to a check (no code, no build) fails it."""
    rows = []
    for (model, task), g in df[df["outcome"].map(counts)].groupby(["model", "task"], sort=False):
        names = list(dict.fromkeys(n for c in g["checks"] for n in c))
        for name in names:
            rows.append((model, task, name, sum(c.get(name) == "pass" for c in g["checks"]), len(g)))
    return pd.DataFrame(rows, columns=["model", "task", "check", "passed", "n"])


def identical_answers(df: pd.DataFrame) -> list[str]:
    """One warning per (model, exam version) whose answers to a task are byte-identical
    (extracted code, or content when no code was found) across two or more seeds."""
    out = []
    for (model, exam, version), g in df.groupby(["model", "exam", "exam_version"], sort=False):
        hits = []
        for task, t in g.groupby("task", sort=False):
            by_text: dict[str, list[int]] = {}
            for code, content, seed in zip(t["extracted_code"], t["content"], t["seed"]):
                text = code if isinstance(code, str) and code else content
                if isinstance(text, str) and text.strip():
                    by_text.setdefault(text, []).append(int(seed))
            for seeds in by_text.values():
                if len(set(seeds)) >= 2:
                    hits.append(f"{task} (seeds {', '.join(map(str, sorted(set(seeds))))})")
        if hits:
            out.append(f"warning: {model} gave byte-identical answers for different seeds on {exam} v{version}: "
                       f"{'; '.join(hits)}. The server may be ignoring the seed.")
    return out


# --------------------------------------------------------------------------- tables


def _fmt(x: float) -> str:
    return f"{x:.1f}" if abs(x - round(x)) > 1e-9 else f"{x:.0f}"


def _order(outcome: str) -> int:
    return OUTCOME_ORDER.index(outcome) if outcome in OUTCOME_ORDER else len(OUTCOME_ORDER)


def summary_table(sums: list[ModelSummary], title: str) -> Table:
    header = ["Model", "Mean", "Range", "95% CI", "Builds", "Works", "Outcomes", "Decode tok/s", "Prefill tok/s"]
    rows, records = [], []
    served_notes: list[str] = []
    for s in sums:
        iv = s.interval
        vals = list(s.scores.values())
        mark = ""
        if s.serving_warnings:
            mark = " †" + str(len(served_notes) + 1)
            served_notes.append(f"†{len(served_notes) + 1} {s.model}: served wrongly, the score says little about "
                                f"the model: {'; '.join(s.serving_warnings)}.")
        rows.append([
            s.model + mark,
            "n/a" if s.mean is None else f"{s.mean:.1f}",
            f"{_fmt(min(vals))}–{_fmt(max(vals))}" if vals else "n/a",
            f"{iv.lo:.1f}–{iv.hi:.1f}" if iv else "n/a",
            f"{s.builds}/{s.attempts}", f"{s.works}/{s.attempts}",
            ", ".join(f"{k} {v}" for k, v in s.outcomes.items()),
            speed.format_tps(s.decode_tps, s.tps_approx), speed.format_prefill(s.prefill_tps, s.prefill_tokens),
        ])
        records.append({
            "exam": s.exam, "exam_version": s.exam_version, "model": s.model, "max_points": s.max_points,
            "seeds": len(vals), "mean": s.mean, "min": min(vals) if vals else None, "max": max(vals) if vals else None,
            "ci_low": iv.lo if iv else None, "ci_high": iv.hi if iv else None, "consistent": s.consistent,
            "attempts": s.attempts, "builds": s.builds, "works": s.works,
            **{f"outcome_{k}": v for k, v in s.outcomes.items()},
            "decode_tps": s.decode_tps, "prefill_tps": s.prefill_tps, "prefill_tokens": s.prefill_tokens,
            "tps_approx": s.tps_approx, "serving_warnings": "; ".join(s.serving_warnings) or None,
        })
    notes = served_notes + [
        "Mean, Range and 95% CI are over seeds of the per-seed exam score (the CI falls back to a "
        "Wilson interval when every seed scored the same, so it never has zero width). Builds: attempts "
        "whose code compiled; Works: built and passed at least one check besides the build. "
        "Bold rows: the same score, above zero, on every seed. "
        f"Tok/s: means over answers with at least {speed.MIN_TIMED_TOKENS} tokens to time; prefill with the "
        "uncached prompt tokens per answer it covers."]
    return Table("summary", title, header, rows, [s.highlighted for s in sums], notes, records)


def check_tables(df: pd.DataFrame, models: list[str]) -> list[Table]:
    """One table per task: models (in summary order) x checks, cells ``passed/n``."""
    rates = check_rates(df)
    exam, version = df["exam"].iloc[0], int(df["exam_version"].iloc[0])
    out = []
    for task in _tasks(df):
        r = rates[rates["task"] == task]
        if r.empty:
            continue
        names = list(dict.fromkeys(r["check"]))
        cell = {(m, c): (p, n) for m, c, p, n in zip(r["model"], r["check"], r["passed"], r["n"])}
        rows = []
        for model in models:
            if any((model, c) in cell for c in names):
                rows.append([model] + [f"{cell[(model, c)][0]}/{cell[(model, c)][1]}" if (model, c) in cell
                                       else "n/a" for c in names])
        # A check nobody passes hints at a hidden requirement or a grader bug, but only
        # once some code built: when nothing compiled, every check fails for that reason.
        # (Whether an answer built comes from its grade, not from a check named "build":
        # exams with their own checks have none.)
        counted = df[(df["task"] == task) & df["outcome"].map(counts)]
        some_built = bool(counted["built"].any()) if "built" in counted else True
        never = [c for c in names if c != "build" and r[r["check"] == c]["passed"].sum() == 0] if some_built else []
        notes = [f"No model passed {', '.join(never)}: a hidden requirement or a grader bug?"] if never else []
        records = [{"exam": exam, "exam_version": version, "model": m, "task": task, "check": c, "passed": int(p),
                    "n": int(n), "rate": p / n if n else None}
                   for m, c, p, n in zip(r["model"], r["check"], r["passed"], r["n"])]
        out.append(Table("checks", f"{task}: per-check pass rates", ["Model", *names], rows, [], notes, records))
    return out


def pass_at_k_table(df: pd.DataFrame, models: list[str]) -> Table | None:
    """pass@1 and pass@k (k = the fewest attempts any model has on a task) per task;
    a task is solved by an attempt that scores full marks. None with one seed."""
    c = df[df["outcome"].map(counts)]
    if c.empty:
        return None
    exam, version = df["exam"].iloc[0], int(df["exam_version"].iloc[0])
    c = c.assign(solved=(c["points"] >= c["max_points"] - 1e-9).astype(int))
    g = c.groupby(["model", "task"], sort=False)
    n = g.size()
    solved = g["solved"].sum()
    k = int(n.min())
    if k < 2:
        return None
    tasks = _tasks(df)
    header = ["Model"] + [h for t in tasks for h in (f"{t} pass@1", f"{t} pass@{k}")]
    rows, records = [], []
    for model in models:
        row = [model]
        for t in tasks:
            if (model, t) not in n.index:
                row += ["n/a", "n/a"]
                continue
            nn, cc = int(n[(model, t)]), int(solved[(model, t)])
            p1, pk = stats.pass_at_k(nn, cc, 1), stats.pass_at_k(nn, cc, k)
            row += [f"{p1:.2f} ({cc}/{nn})", f"{pk:.2f}"]
            records.append({"exam": exam, "exam_version": version, "model": model, "task": t, "n": nn,
                            "solved": cc, "k": k, "pass_at_1": p1, "pass_at_k": pk})
        rows.append(row)
    notes = ["A task is solved by an attempt with full marks; pass@k is the unbiased estimator "
             "1 - C(n-c, k)/C(n, k) (Chen et al. 2021) with n attempts of which c solved it."]
    return Table("pass_at_k", "pass@k per task", header, rows, [], notes, records)


@dataclass(frozen=True)
class ExamSection:
    exam: str
    exam_version: int
    title: str
    summaries: list[ModelSummary]
    tables: list[Table]
    notes: list[str]
    warnings: list[str]
    frame: pd.DataFrame          # the attempts of this exam version (for plots)


def isolation_note(sub: pd.DataFrame) -> str:
    """Which containment produced the grades (``details.isolation`` of each grade;
    docs/security.md): e.g. "isolation bwrap+uid64191+memcg+pidscg (12 grades)"."""
    counts: dict[str, int] = {}
    for d, graded in zip(sub["grade_details"], sub["grader_hash"].notna()):
        if not graded or not isinstance(d, dict) or not ({"isolation", "build_s", "build_status"} & d.keys()):
            continue   # nothing was built or run for it (no code, truncated, ...)
        label = str(d["isolation"]) if d.get("isolation") else "not recorded"
        counts[label] = counts.get(label, 0) + 1
    if not counts:
        return "isolation n/a (no answer was built)"
    return "isolation " + ", ".join(f"{k} ({v} grade{'s' if v != 1 else ''})" for k, v in sorted(counts.items()))


def exam_sections(df: pd.DataFrame) -> list[ExamSection]:
    out = []
    for (exam, version), sub in df.groupby(["exam", "exam_version"], sort=False):
        sums = summarize(sub)
        mx = sums[0].max_points if sums else 0.0
        seeds = sorted(int(s) for s in sub["seed"].unique())
        out_of = f"/{_fmt(mx)}" if mx > 0 else "nothing graded"
        title = f"{exam} v{version} ({out_of}; seeds {', '.join(map(str, seeds))})"
        models = [s.model for s in sums]
        tables = [summary_table(sums, title), *check_tables(sub, models)]
        pk = pass_at_k_table(sub, models)
        if pk is not None:
            tables.append(pk)
        hashes = sorted({h for h in sub["grader_hash"].dropna()})
        note = f"grader {', '.join(hashes) or 'n/a'}."
        tables[0].notes.append(isolation_note(sub) + ".")   # markdown, JSON and HTML all show it
        graded = sub["grader_hash"].notna()
        stale = int((graded & ~sub["grade_current"].astype(bool)).sum())
        if stale:
            note += f" {stale} attempt(s) graded by an older grader: run `sweep regrade`."
        # endpoint errors have no answer to grade: the next run asks for them again
        ungraded = int((~graded & (sub["gen_outcome"] != "endpoint_error")).sum())
        if ungraded:
            note += f" {ungraded} stored answer(s) not graded yet: run `sweep regrade`, or rerun the sweep."
        out.append(ExamSection(str(exam), int(version), title, sums, tables, [note], identical_answers(sub), sub))
    return out


def quant_tables(df: pd.DataFrame, sections: list[ExamSection], infos: dict[str, QuantInfo],
                 *, everything: bool = False) -> list[Table]:
    """For each base model with two or more quants (every base with ``everything``):
    Quant | Size | one column per exam version | Works | tok/s, plus paired verdicts
    of each quant against the largest one."""
    from harness import compare

    groups = quant.shared_bases(infos)
    if everything:
        for info in infos.values():
            groups.setdefault(info.group, [info])
    out = []
    for key in sorted(groups):
        rows_info = quant.order(groups[key])
        # Compare like with like: only the exam versions and tasks every quant of this base
        # has answers on (a quant that alone ran a long-prompt exam would look slower).
        group_models = [i.model for i in rows_info]
        tasks_of = [set(zip(*(df.loc[df["model"] == m, c] for c in ("exam", "exam_version", "task"))))
                    for m in group_models]
        common = set.intersection(*tasks_of) if tasks_of else set()
        common_exams = {(e, v) for e, v, _ in common}
        cols = [(s.exam, s.exam_version, {x.model: x for x in s.summaries}, s.summaries[0].max_points
                 if s.summaries else 0.0) for s in sections if (s.exam, s.exam_version) in common_exams]
        left_out = sorted({(e, v, t) for ts in tasks_of for e, v, t in ts} - common)
        in_common = pd.Series([(e, v, t) in common for e, v, t in zip(df["exam"], df["exam_version"], df["task"])],
                              index=df.index, dtype=bool)
        header = ["Quant", "Model", "Size", *[f"{e} v{v} (/{_fmt(mx)})" for e, v, _, mx in cols], "Works", "tok/s"]
        rows, records = [], []
        for info in rows_info:
            m = df[(df["model"] == info.model) & in_common]
            row = [info.quant or "n/a", info.model, quant.format_size(info.size_bytes)]
            rec: dict[str, Any] = {"base": rows_info[0].base, "quant": info.quant, "model": info.model,
                                   "size_bytes": info.size_bytes, "source": info.source}
            for e, v, by_model, _ in cols:
                s = by_model.get(info.model)
                if s is None or s.mean is None or s.interval is None:
                    row.append("n/a")
                    continue
                row.append(f"{s.mean:.1f} [{s.interval.lo:.1f}–{s.interval.hi:.1f}]")
                rec[f"{e} v{v} mean"] = s.mean
            counted = m[m["outcome"].map(counts)]
            w = sum(works(c, b) for c, b in zip(counted["checks"], counted["built"]))
            dec, approx = speed.mean_decode(m)
            row += [f"{w}/{len(counted)}", speed.format_tps(dec, approx)]
            rec.update(works=w, attempts=len(counted), decode_tps=dec)
            rows.append(row)
            records.append(rec)
        notes = []
        ref = rows_info[0]
        for info in rows_info[1:]:
            for c in compare.compare(df, info.model, ref.model, strict=False):
                notes.append(f"{info.quant} vs {ref.quant}: {c.verdict}.")
        src = "the server" if all(i.source == "server" for i in rows_info) else "model names"
        notes.append(f"Cells: mean exam score [95% CI] over seeds. Works and tok/s over the exams and tasks every "
                     f"quant here answered. Base, quant and size from {src}.")
        if left_out:
            notes.append("Left out, not answered by every quant: "
                         + ", ".join(f"{e} v{v} {t}" for e, v, t in left_out) + ".")
        out.append(Table("quant", f"{rows_info[0].base}: quantizations", header, rows, [], notes, records))
    return out


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Report:
    sections: list[ExamSection]
    quant: list[Table]
    speed: Table | None = None

    @property
    def tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables] + ([self.speed] if self.speed else []) + self.quant

    @property
    def warnings(self) -> list[str]:
        return [w for s in self.sections for w in s.warnings]


def known_models(df: pd.DataFrame, known: Mapping[str, Mapping[str, Any]] | None = None
                 ) -> dict[str, Mapping[str, Any]]:
    """model id -> {"base", "quant", "size_bytes"}: ``known`` (e.g. a llama-swap config)
    where it has the model, else what the server reported it ran (the GGUF the tool
    served, or the one llama-server's /props named; size only when that file was on
    this machine), else nothing (the id is parsed)."""
    from harness import llamaswap

    out: dict[str, Mapping[str, Any]] = {}
    if not df.empty and "served_gguf" in df:
        for model, m in df.groupby("model", sort=False):
            rows = m[m["served_gguf"].notna() | m["served_quant"].notna()]
            if rows.empty:
                continue
            last = rows.iloc[-1]
            size = last["served_size_bytes"]
            gguf = last["served_gguf"] if isinstance(last["served_gguf"], str) else None
            out[str(model)] = {"base": llamaswap.base_name(gguf) if gguf else None,
                               "quant": last["served_quant"] if isinstance(last["served_quant"], str) else None,
                               "size_bytes": int(size) if pd.notna(size) else None}
    out.update(known or {})
    return out


def build(df: pd.DataFrame, *, known: Mapping[str, Mapping[str, Any]] | None = None,
          by_quant: bool = False) -> Report:
    """Every table of the report. ``known``: model id -> {"base", "quant",
    "size_bytes"} from the server's config (else parsed from model names). The
    quantization view appears when models share a base, or always with ``by_quant``."""
    if df.empty:
        return Report([], [])
    sections = exam_sections(df)
    infos = quant.resolve(list(dict.fromkeys(df["model"])), known_models(df, known))
    order = list(dict.fromkeys(x.model for s in sections for x in s.summaries))
    return Report(sections, quant_tables(df, sections, infos, everything=by_quant), speed.speed_table(df, order))


def markdown(df: pd.DataFrame, *, known: Mapping[str, Mapping[str, Any]] | None = None,
             by_quant: bool = False) -> str:
    """The report as markdown: per exam version its tables, then the quantization view."""
    if df.empty:
        return "No attempts stored yet.\n"
    rep = build(df, known=known, by_quant=by_quant)
    parts: list[str] = []
    for s in rep.sections:
        summary, *rest = s.tables
        parts += [f"## {s.title}\n", summary.markdown(), "", *summary.notes, *s.notes, ""]
        parts += [w for w in s.warnings] + ([""] if s.warnings else [])
        for t in rest:
            parts += [f"### {s.exam} v{s.exam_version} {t.title}\n", t.markdown(), "", *t.notes]
            parts += [""] if t.notes else []
    if rep.speed is not None:
        parts += ["## Speed\n", rep.speed.markdown(), "", *rep.speed.notes, ""]
    if rep.quant:
        parts.append("## Quantizations\n")
        for t in rep.quant:
            parts += [f"### {t.title}\n", t.markdown(), "", *t.notes, ""]
    return "\n".join(parts).rstrip("\n") + "\n"
