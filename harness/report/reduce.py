"""Reports, step 2: reductions of ``harness.report.loader.load``'s DataFrame into
numbers. Small pure functions over pandas; no formatting (``harness.report.render``).

Seeds are epochs: an exam's score for one (model, seed) is the sum of its tasks'
points; the mean and range are over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.report import speed, stats
from harness.results import Outcome

OUTCOME_ORDER = [o.value for o in Outcome]


def counts(outcome: Any) -> bool:
    """Whether an attempt with this outcome counts against the model (graded, and
    not an endpoint or grading error)."""
    return isinstance(outcome, str) and outcome in OUTCOME_ORDER and Outcome(outcome).counts_against_model


def works(checks: dict[str, str], built: bool) -> bool:
    """Built and passed at least one check other than the build itself."""
    return bool(built) and any(st == "pass" for name, st in checks.items() if name != "build")


def task_order(df: pd.DataFrame) -> list[str]:
    """The tasks of these attempts, in stored order."""
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
    serving_warnings: tuple[str, ...] = ()   # e.g. a fallback chat template (harness.generate.served)

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


def grading_errors(df: pd.DataFrame) -> list[str]:
    """One warning per model with attempts whose grade is ``grading_error`` (a fault of
    ours): those seeds are left out of its means, which then rest on fewer seeds."""
    out = []
    errs = df[df["outcome"] == "grading_error"]
    for model, g in errs.groupby("model", sort=False):
        seeds = ", ".join(str(int(x)) for x in sorted(g["seed"].unique()))
        out.append(f"{model}: {len(g)} attempt(s) ended in grading_error (seeds {seeds}): a fault of the grader or "
                   "the machine, not the model's; they are left out of its scores, which rest on fewer seeds. "
                   "See `sweep logs`, fix the cause, then `sweep regrade`.")
    return out


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


def _order(outcome: str) -> int:
    return OUTCOME_ORDER.index(outcome) if outcome in OUTCOME_ORDER else len(OUTCOME_ORDER)


def known_models(df: pd.DataFrame, known: Mapping[str, Mapping[str, Any]] | None = None
                 ) -> dict[str, Mapping[str, Any]]:
    """model id -> {"base", "quant", "size_bytes"}: ``known`` (e.g. a llama-swap config)
    where it has the model, else what the server reported it ran (the GGUF the tool
    served, or the one llama-server's /props named; size only when that file was on
    this machine), else nothing (the id is parsed)."""
    from harness import quant

    out: dict[str, Mapping[str, Any]] = {}
    if not df.empty and "served_gguf" in df:
        for model, m in df.groupby("model", sort=False):
            rows = m[m["served_gguf"].notna() | m["served_quant"].notna()]
            if rows.empty:
                continue
            last = rows.iloc[-1]
            size = last["served_size_bytes"]
            gguf = last["served_gguf"] if isinstance(last["served_gguf"], str) else None
            out[str(model)] = {"base": quant.base_name(gguf) if gguf else None,
                               "quant": last["served_quant"] if isinstance(last["served_quant"], str) else None,
                               "size_bytes": int(size) if pd.notna(size) else None}
    out.update(known or {})
    return out
