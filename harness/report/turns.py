"""Reports: repair turns (``sweep run --turns N``). Pure functions over
``harness.report.loader.load``'s DataFrame, whose ``turn`` column says which answer of
its cell a row is (1 = the first).

* :func:`first_turn`: the rows of turn 1, what a one-turn sweep stores: every other
  table of the report is reduced from these, so its numbers equal a one-turn sweep's;
* :func:`as_of`: the cells as they stand after turn k: each cell's latest stored turn
  at or before k (a cell that scored full marks on turn 1 keeps that answer);
* :func:`turn_summaries` and :func:`turns_table`: per model and turn k, the exam score
  after turn k (mean over complete seeds, 95% interval), how many cells first scored
  full marks on turn k ("solved on turn k"), and what turn k cost: its answers,
  completion and prompt tokens, and generation seconds (summed over its answers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.report import stats
from harness.report.reduce import counts, seed_scores
from harness.report.tables import Table, format_points

CELL = ["model", "exam", "exam_version", "task", "seed"]


def first_turn(df: pd.DataFrame) -> pd.DataFrame:
    """The first answer of every cell (all rows when there is no ``turn`` column)."""
    if df.empty or "turn" not in df:
        return df
    return df[df["turn"] == 1]


def max_turn(df: pd.DataFrame) -> int:
    return int(df["turn"].max()) if not df.empty and "turn" in df else 1


def as_of(df: pd.DataFrame, turn: int) -> pd.DataFrame:
    """Each cell's latest stored turn at or before ``turn``: the cells after ``turn``."""
    if df.empty or "turn" not in df:
        return df
    upto = df[df["turn"] <= turn]
    if upto.empty:
        return upto
    last = upto.groupby(CELL, sort=False)["turn"].transform("max")
    return upto[upto["turn"] == last]


def _full(outcome: object, points: object, max_points: object) -> bool:
    return counts(outcome) and isinstance(points, (int, float)) and isinstance(max_points, (int, float)) \
        and max_points > 0 and points >= max_points


@dataclass(frozen=True)
class TurnSummary:
    """One model on one exam version after turn ``turn``."""

    model: str
    turn: int
    max_points: float
    scores: dict[int, float]             # per complete seed, after this turn
    interval: stats.MeanInterval | None
    solved_by: int                       # cells with full marks after this turn
    solved_on: int                       # cells whose first full marks came on this turn
    cells: int                           # cells with a first answer that counts
    answers: int                         # answers generated on this turn
    completion_tokens: int
    prompt_tokens: int
    seconds: float

    @property
    def mean(self) -> float | None:
        return float(np.mean(list(self.scores.values()))) if self.scores else None


def turn_summaries(sub: pd.DataFrame) -> list[TurnSummary]:
    """Per model (in stored order) and turn 1..N, for one exam version's rows (every turn)."""
    if sub.empty:
        return []
    n = max_turn(sub)
    first_full: dict[tuple[object, ...], int] = {}
    for row in sub.sort_values("turn").itertuples(index=False):
        cell = tuple(getattr(row, c) for c in CELL)
        if cell not in first_full and _full(row.outcome, row.points, row.max_points):
            first_full[cell] = int(row.turn)
    per_turn = {k: seed_scores(as_of(sub, k)) for k in range(1, n + 1)}
    full1 = per_turn[1][per_turn[1]["complete"]]
    exam_max = float(full1["max"].max()) if len(full1) else float(per_turn[1]["max"].max())
    out = []
    for model in dict.fromkeys(sub["model"]):
        m = sub[sub["model"] == model]
        cells = int(first_turn(m)["outcome"].map(counts).sum())
        solved = [t for c, t in first_full.items() if c[0] == model]
        for k in range(1, n + 1):
            ss = per_turn[k]
            ss = ss[(ss["model"] == model) & ss["complete"]]
            scores = {int(s): float(v) for s, v in zip(ss["seed"], ss["score"])}
            at = m[m["turn"] == k]
            answered = at[at["gen_outcome"] != "endpoint_error"]
            out.append(TurnSummary(
                model=str(model), turn=k, max_points=exam_max, scores=scores,
                interval=stats.mean_interval(list(scores.values()), 0.0, exam_max) if scores and exam_max > 0
                else None,
                solved_by=sum(1 for t in solved if t <= k), solved_on=sum(1 for t in solved if t == k),
                cells=cells, answers=len(answered),
                completion_tokens=int(pd.to_numeric(answered["completion_tokens"], errors="coerce").fillna(0).sum()),
                prompt_tokens=int(pd.to_numeric(answered["prompt_tokens"], errors="coerce").fillna(0).sum()),
                seconds=float(pd.to_numeric(answered["wall_s"], errors="coerce").fillna(0).sum())))
    return out


def turns_table(sub: pd.DataFrame, title: str) -> Table | None:
    """The repair-turns table of one exam version; None when no cell has a second turn."""
    if max_turn(sub) < 2:
        return None
    header = ["Model", "Turn", "Mean", "95% CI", "Solved on turn", "Solved by turn", "Answers",
              "Completion tokens", "Prompt tokens", "Seconds"]
    rows, records = [], []
    sums = turn_summaries(sub)
    for t in sums:
        iv = t.interval
        rows.append([t.model if t.turn == 1 else "", str(t.turn), "n/a" if t.mean is None else f"{t.mean:.1f}",
                     f"{iv.lo:.1f}–{iv.hi:.1f}" if iv else "n/a", str(t.solved_on), f"{t.solved_by}/{t.cells}",
                     str(t.answers), str(t.completion_tokens), str(t.prompt_tokens), f"{t.seconds:.1f}"])
        records.append({"model": t.model, "turn": t.turn, "max_points": t.max_points, "seeds": len(t.scores),
                        "mean": t.mean, "ci_low": iv.lo if iv else None, "ci_high": iv.hi if iv else None,
                        "solved_on_turn": t.solved_on, "solved_by_turn": t.solved_by, "cells": t.cells,
                        "answers": t.answers, "completion_tokens": t.completion_tokens,
                        "prompt_tokens": t.prompt_tokens, "seconds": t.seconds})
    mx = format_points(sums[0].max_points) if sums else "?"
    notes = [f"Repair turns of {title}: after an answer without full marks the model got the build error or its "
             "failing checks (never the hidden expected outputs) and answered again. Mean: the exam score "
             f"(/{mx}) after turn k, each cell at its latest answer up to turn k, over complete seeds; turn 1 is "
             "the summary table's. Solved on turn: cells whose first full marks came on that turn; solved by "
             "turn: cells with full marks by then, of the cells with a first answer. Answers, tokens and "
             "seconds: what that turn's answers cost (prompt tokens grow with the conversation)."]
    return Table("turns", "repair turns", header, rows, [], notes, records)
