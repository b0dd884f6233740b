"""The state behind the CLI's live one-line status, and the end-of-sweep summary.

Pure formatting: ``LiveStatus`` is fed the sweep's ``Event``s and renders one line
(cells done/total, current model, last outcome, tok/s of the last answer, ETA from
the mean time per generated cell); the CLI decides where and whether to write it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.events import Event, EventKind
from harness.generate.runner import SweepSummary


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def points(e: Event) -> str:
    """``3/5`` for a graded event (``?`` for a figure it lacks)."""
    got = "?" if e.points is None else f"{e.points:g}"
    of = "?" if e.max_points is None else f"{e.max_points:g}"
    return f"{got}/{of}"


class LiveStatus:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.total = 0
        self.generated = 0
        self.graded = 0
        self.model: str | None = None
        self.last_outcome: str | None = None
        self.last_tps: float | None = None

    def update(self, e: Event) -> None:
        if e.total:
            self.total = e.total
        if e.kind is EventKind.INFO and e.key is None and e.total and self.generated == 0 and self.done == 0:
            self.started = self.clock()          # the sweep's first event: generation starts now
        if e.key is not None and e.kind in (EventKind.GENERATED, EventKind.SKIP, EventKind.ERROR):
            self.model = e.key.model
        if e.done:
            self.done = max(self.done, e.done)
        if e.kind is EventKind.GENERATED:
            self.generated += 1
            self.last_tps = e.tokens_per_s
        elif e.kind is EventKind.GRADED:
            self.graded += 1
            self.last_outcome = f"{e.outcome} {points(e)}"
        elif e.kind is EventKind.ERROR:
            self.last_outcome = e.outcome or "error"

    def eta_s(self) -> float | None:
        if not self.generated or not self.total:
            return None
        per_cell = (self.clock() - self.started) / self.generated
        return per_cell * max(0, self.total - self.done)

    def line(self, width: int = 100) -> str:
        parts = [f"[{self.done}/{self.total}]" + (f" {self.model}" if self.model else "")]
        if self.last_outcome:
            parts.append(f"last: {self.last_outcome}")
        if self.last_tps is not None:
            parts.append(f"{self.last_tps:.1f} tok/s")
        if self.generated:
            parts.append(f"graded {self.graded}/{self.generated}")
        eta = self.eta_s()
        if eta is not None:
            parts.append(f"ETA {duration(eta)}" if self.done < self.total else "grading")
        text = " | ".join(parts)
        return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def summary_line(summary: SweepSummary, elapsed_s: float) -> str:
    """One line: what the sweep did, its outcomes and how long it took."""
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items()))
    text = (f"sweep {'finished' if summary.ok else 'ended with errors'} in {duration(elapsed_s)}: "
            f"{summary.total_cells} cells, {summary.generated} generated, {summary.skipped} already stored, "
            f"{summary.graded} graded")
    if outcomes:
        text += f" ({outcomes})"
    if summary.retried:
        text += f"; {summary.retried} grading error(s) retried once"
    if summary.errors:
        text += f"; {len(summary.errors)} error(s)"
    return text
