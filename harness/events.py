"""Progress events: what the library reports while it works (it never prints).

A sweep, a regrade or an exam validation calls the ``progress`` callback it is given
with one ``Event`` per step; the CLI renders them (``sweep.Progress``), a notebook
may collect them. Everything a renderer needs is a field: the points of a grade, the
decode speed of an answer; the message is for people and is never parsed back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from harness.results import CellKey


class EventKind(StrEnum):
    INFO = "info"            # a step or a fact (hidden by --quiet)
    NOTICE = "notice"        # a fact the user must see even with --quiet (e.g. how code is contained)
    WARNING = "warning"      # something to fix, the work goes on
    ERROR = "error"          # a cell or a model failed
    GENERATED = "generated"  # an answer was stored
    GRADED = "graded"        # an answer was graded
    SKIP = "skip"            # the cell was already stored


@dataclass(frozen=True)
class Event:
    kind: EventKind
    message: str
    key: CellKey | None = None
    outcome: str | None = None           # GENERATED: the answer's class; GRADED: the outcome
    done: int = 0                        # cells handled so far (GENERATED, SKIP, ERROR)
    total: int = 0                       # cells (or answers to grade) in all
    wall_s: float | None = None          # GENERATED: the HTTP exchange's wall time
    tokens_per_s: float | None = None    # GENERATED: decode speed of that answer
    points: float | None = None          # GRADED: the grade's points
    max_points: float | None = None      # GRADED: the task's fixed denominator


ProgressFn = Callable[[Event], None]


def ignore(event: Event) -> None:
    """A progress callback that drops every event."""
