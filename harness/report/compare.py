"""Paired comparison of two models on the same cells (exam version, task, seed).

``compare(df, A, B)`` pairs the attempts of two models that were asked the same
thing with the same seed and, per exam version, reports:

* the mean score difference (A - B) with a 95% interval, the exact sign test and the
  exact paired permutation test on the per-task scores
  (:func:`harness.report.stats.paired_comparison`), reported in one unit, points of the exam
  score: the per-task figures times the number of tasks;
* McNemar's exact test on per-check pass/fail pairs (every check of every paired
  cell). Checks of one answer are not independent (a build failure fails them all),
  so this p-value is optimistic; it says *where* the models differ, the verdict
  uses the score test;
* a plain-language verdict (:func:`harness.report.stats.verdict`).

Only cells whose attempts count against both models are paired (endpoint and
grading errors are left out, and counted).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from harness.errors import ConfigError
from harness.report import stats, turns
from harness.results import Outcome

_COUNTED = {o.value for o in Outcome if o.counts_against_model}


@dataclass(frozen=True)
class CheckDiff:
    """A check the two models pass at different rates on the paired cells."""

    task: str
    check: str
    a_passed: int
    b_passed: int
    n: int


@dataclass(frozen=True)
class Comparison:
    model_a: str
    model_b: str
    exam: str
    exam_version: int
    seeds: list[int]
    tasks: list[str]
    result: stats.PairedResult
    exam_score_a: float | None      # mean per-seed exam score over seeds with every task paired
    exam_score_b: float | None
    exam_max: float | None
    mcnemar_b: int                  # check pairs passed by A only
    mcnemar_c: int                  # check pairs passed by B only
    mcnemar_p: float
    check_pairs: int
    check_diffs: list[CheckDiff]
    unpaired_a: int                 # counted cells of A without a counted cell of B
    unpaired_b: int
    verdict: str
    notes: list[str] = field(default_factory=list)
    turn: int = 1                   # the cells as they stand after this repair turn

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["result"] = asdict(self.result)
        return d


def _cells(df: pd.DataFrame, model: str) -> pd.DataFrame:
    m = df[(df["model"] == model) & df["outcome"].isin(_COUNTED) & df["points"].notna()]
    return m.set_index(["exam", "exam_version", "task", "seed"])


def compare(df: pd.DataFrame, a: str, b: str, *, exam: str | None = None, conf: float = 0.95,
            strict: bool = True, turn: int = 1) -> list[Comparison]:
    """One Comparison per exam version both models have paired cells on, as the
    cells stand after repair turn ``turn`` (``harness.report.turns.as_of``; turn 1:
    the first answers, what a one-turn sweep stores).

    ``strict``: raise ConfigError for an unknown model, ``a == b``, or nothing to
    pair (the CLI's case); otherwise return what there is (possibly nothing)."""
    df = turns.as_of(df, turn)
    models = list(dict.fromkeys(df["model"])) if not df.empty else []
    if strict:
        for m in (a, b):
            if m not in models:
                raise ConfigError(f"model {m!r} has no attempts in this results directory",
                                  hint="models here: " + (", ".join(models) or "none"))
        if a == b:
            raise ConfigError("compare needs two different models")
    if df.empty:
        return []
    sub = df if exam is None else df[df["exam"] == exam]
    if strict and sub.empty:
        raise ConfigError(f"no attempts for exam {exam!r}",
                          hint="exams here: " + ", ".join(sorted(set(df["exam"]))))
    ca, cb = _cells(sub, a), _cells(sub, b)
    out = []
    for (ex, ver) in dict.fromkeys((e, v) for e, v, _, _ in ca.index):
        ia = ca.loc[(ca.index.get_level_values(0) == ex) & (ca.index.get_level_values(1) == ver)]
        ib = cb.loc[(cb.index.get_level_values(0) == ex) & (cb.index.get_level_values(1) == ver)]
        keys = [k for k in ia.index if k in ib.index]
        if not keys:
            continue
        out.append(dataclasses.replace(_compare_exam(a, b, str(ex), int(ver), ia, ib, keys, conf), turn=turn))
    if strict and not out:
        raise ConfigError(f"{a} and {b} have no paired cells (same exam version, task and seed)",
                          hint="run both models on the same exams and seeds")
    return out


def verdicts(df: pd.DataFrame, a: str, b: str) -> list[str]:
    """The plain-language verdict of A against B on each exam version they have paired
    cells on (none when they have none): what the quantization view says of each quant
    against the largest one."""
    return [c.verdict for c in compare(df, a, b, strict=False)]


def _compare_exam(a: str, b: str, exam: str, version: int, ia: pd.DataFrame, ib: pd.DataFrame,
                  keys: list[Any], conf: float) -> Comparison:
    pa = [float(ia.loc[k, "points"]) for k in keys]
    pb = [float(ib.loc[k, "points"]) for k in keys]
    mx = max(float(ia.loc[k, "max_points"]) for k in keys)
    tasks = list(dict.fromkeys(k[2] for k in keys))
    seeds = sorted({int(k[3]) for k in keys})
    per_cell = stats.paired_comparison(pa, pb, mx, conf)
    # One unit throughout: points of the exam score. The per-cell statistics are scaled by
    # the number of tasks, so a mean per-task difference d reads as d x tasks exam points per
    # seed (exactly the mean per-seed difference when every task is paired on every seed).
    k = float(len(tasks))
    res = dataclasses.replace(per_cell, mean_a=per_cell.mean_a * k, mean_b=per_cell.mean_b * k,
                              mean_diff=per_cell.mean_diff * k, sd_diff=per_cell.sd_diff * k,
                              ci_low=per_cell.ci_low * k, ci_high=per_cell.ci_high * k,
                              max_points=per_cell.max_points * k)
    label = f"{exam} v{version}"
    verdict = stats.verdict(res, a, b, label, cells_per_seed=len(tasks))

    # Exam scores over seeds where every task is paired (all the exam's tasks are
    # the tasks either model has on this version).
    all_tasks = set(ia.index.get_level_values(2)) | set(ib.index.get_level_values(2))
    full = [s for s in seeds if all((exam, version, t, s) in keys for t in all_tasks)]
    sa = [sum(float(ia.loc[(exam, version, t, s), "points"]) for t in all_tasks) for s in full]
    sb = [sum(float(ib.loc[(exam, version, t, s), "points"]) for t in all_tasks) for s in full]
    exam_max = sum(float(ia.loc[(exam, version, t, full[0]), "max_points"]) for t in all_tasks) if full else None

    # Per-check pairs.
    a_only = b_only = pairs = 0
    per_check: dict[tuple[str, str], list[int]] = {}
    for k in keys:
        ch_a, ch_b = ia.loc[k, "checks"], ib.loc[k, "checks"]
        for name in dict.fromkeys([*ch_a, *ch_b]):
            x, y = ch_a.get(name) == "pass", ch_b.get(name) == "pass"
            pairs += 1
            a_only += x and not y
            b_only += y and not x
            acc = per_check.setdefault((k[2], name), [0, 0, 0])
            acc[0] += x
            acc[1] += y
            acc[2] += 1
    diffs = [CheckDiff(t, c, pa_, pb_, n) for (t, c), (pa_, pb_, n) in per_check.items() if pa_ != pb_]
    diffs.sort(key=lambda d: (-abs(d.a_passed - d.b_passed), d.task, d.check))
    notes = []
    ua, ub = len(ia) - len(keys), len(ib) - len(keys)
    if ua or ub:
        notes.append(f"left out: {ua} cell(s) of {a} and {ub} of {b} without a counterpart")
    return Comparison(
        model_a=a, model_b=b, exam=exam, exam_version=version, seeds=seeds, tasks=tasks, result=res,
        exam_score_a=sum(sa) / len(sa) if sa else None, exam_score_b=sum(sb) / len(sb) if sb else None,
        exam_max=exam_max, mcnemar_b=a_only, mcnemar_c=b_only, mcnemar_p=stats.mcnemar_exact(a_only, b_only),
        check_pairs=pairs, check_diffs=diffs, unpaired_a=ua, unpaired_b=ub, verdict=verdict, notes=notes,
    )


def _p(p: float) -> str:
    return "p<0.001" if p < 0.001 else (f"p={p:.2g}" if p < 0.1 else f"p={p:.2f}")


def render(comps: list[Comparison], *, max_checks: int = 8) -> str:
    """Plain text, one block per exam version."""
    out = []
    for c in comps:
        r = c.result
        a, b = c.model_a, c.model_b
        lines = [f"{c.exam} v{c.exam_version}: {a} (A) vs {b} (B), {r.n} paired cells "
                 f"({len(c.seeds)} seed(s) x {len(c.tasks)} task(s))"
                 + (f", after repair turn {c.turn}" if c.turn != 1 else "")]
        if c.exam_score_a is not None and c.exam_max is not None:
            lines.append(f"  exam score (mean over seeds, of {c.exam_max:g}): A {c.exam_score_a:.1f}, "
                         f"B {c.exam_score_b:.1f}")
        lines.append(f"  difference in exam points per seed: {r.mean_diff:+.1f}, {r.conf * 100:g}% CI "
                     f"{r.ci_low:.1f} to {r.ci_high:.1f} ("
                     f"{'t' if r.ci_method == 't' else 'Wilson fallback: no spread observed'}; "
                     f"from the {r.n} paired task attempts x {len(c.tasks)} task(s))")
        lines.append(f"  sign test: A higher on {r.wins}, B higher on {r.losses}, {r.ties} tie(s); "
                     f"{_p(r.sign_test_p)}")
        lines.append(f"  paired permutation test ({'exact' if r.permutation_exact else 'Monte Carlo'}): "
                     f"{_p(r.permutation_p)}")
        lines.append(f"  per-check McNemar: {c.mcnemar_b} check(s) passed only by A, {c.mcnemar_c} only by B "
                     f"of {c.check_pairs} pairs; exact {_p(c.mcnemar_p)} (checks of one answer are not "
                     f"independent: read it as where they differ)")
        for d in c.check_diffs[:max_checks]:
            lines.append(f"    {d.task}/{d.check}: A {d.a_passed}/{d.n}, B {d.b_passed}/{d.n}")
        if len(c.check_diffs) > max_checks:
            lines.append(f"    ... and {len(c.check_diffs) - max_checks} more (see --json)")
        lines += [f"  note: {n}" for n in c.notes]
        lines.append(f"  verdict: {c.verdict}")
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"
