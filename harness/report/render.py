"""Reports, step 3: the tables (``harness.report.tables.Table``: what a reader sees and what
a program reads) of each exam version, the speed table and the quantization view,
assembled into a ``Report``, and the report as markdown. Numbers come from
``harness.report.reduce``; nothing here reads the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness import quant
from harness.report import speed, stats
from harness.report import turns as report_turns
from harness.report.quant_view import quant_tables
from harness.report.reduce import (
    ModelSummary,
    check_rates,
    counts,
    grading_errors,
    identical_answers,
    known_models,
    summarize,
    task_order,
)
from harness.report.tables import Table, format_points


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
            f"{format_points(min(vals))}–{format_points(max(vals))}" if vals else "n/a",
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
    for task in task_order(df):
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
    tasks = task_order(df)
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
    by_label: dict[str, int] = {}
    for d, graded in zip(sub["grade_details"], sub["grader_hash"].notna()):
        if not graded or not isinstance(d, dict) or not ({"isolation", "build_s", "build_status"} & d.keys()):
            continue   # nothing was built or run for it (no code, truncated, ...)
        label = str(d["isolation"]) if d.get("isolation") else "not recorded"
        by_label[label] = by_label.get(label, 0) + 1
    if not by_label:
        return "isolation n/a (no answer was built)"
    return "isolation " + ", ".join(f"{k} ({v} grade{'s' if v != 1 else ''})" for k, v in sorted(by_label.items()))


def exam_sections(df: pd.DataFrame) -> list[ExamSection]:
    out = []
    for (exam, version), sub in df.groupby(["exam", "exam_version"], sort=False):
        sums = summarize(sub)
        mx = sums[0].max_points if sums else 0.0
        seeds = sorted(int(s) for s in sub["seed"].unique())
        out_of = f"/{format_points(mx)}" if mx > 0 else "nothing graded"
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
        warnings = grading_errors(sub) + identical_answers(sub)
        out.append(ExamSection(str(exam), int(version), title, sums, tables, [note], warnings, sub))
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


def build(df: pd.DataFrame, *, known: Mapping[str, Mapping[str, Any]] | None = None,
          by_quant: bool = False) -> Report:
    """Every table of the report. ``known``: model id -> {"base", "quant",
    "size_bytes"} from the server's config (else parsed from model names). The
    quantization view appears when models share a base, or always with ``by_quant``."""
    if df.empty:
        return Report([], [])
    every_turn, df = df, report_turns.first_turn(df)   # every table but the repair turns': the first answers
    sections = exam_sections(df)
    for s in sections:
        sub = every_turn[(every_turn["exam"] == s.exam) & (every_turn["exam_version"] == s.exam_version)]
        turns = report_turns.turns_table(sub, f"{s.exam} v{s.exam_version}")
        if turns is not None:
            s.tables.append(turns)
    infos = quant.resolve(list(dict.fromkeys(df["model"])), known_models(df, known))
    order = list(dict.fromkeys(x.model for s in sections for x in s.summaries))
    summaries = {(s.exam, s.exam_version): s.summaries for s in sections}
    return Report(sections, quant_tables(df, summaries, infos, everything=by_quant), speed.speed_table(df, order))


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
