"""Wall-clock deadlines that stretch on a slow machine.

``SWEEP_CHECK_TIME_SCALE`` (a positive number, default 1) is the one variable the
check driver receives from the grader's environment; the gotest grader multiplies
Go's ``-test.timeout`` by it too. Checks multiply every wall-clock *deadline* by it
(``scaled``), never a duration that is part of the scenario (a scrape interval, an
outage length): a slower machine then gets more time, not a different test.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from harness.exams.checkkit import TIME_SCALE_ENV

__all__ = ["TIME_SCALE_ENV", "Deadline", "scaled", "time_scale"]


def time_scale() -> float:
    """``SWEEP_CHECK_TIME_SCALE`` from the environment; 1.0 when unset or not a
    positive finite number (the grader refuses such a value before any check runs)."""
    try:
        v = float(os.environ.get(TIME_SCALE_ENV, "1") or "1")
    except ValueError:
        return 1.0
    return v if v > 0 and math.isfinite(v) else 1.0


def scaled(seconds: float) -> float:
    """A wall-clock deadline of ``seconds`` on this machine."""
    return seconds * time_scale()


@dataclass(frozen=True)
class Deadline:
    """A point in monotonic time, ``scaled`` when made with ``Deadline.after``."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + scaled(seconds))

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at
