"""Typed results: outcome classes, per-check results and grades.

Nothing in the store or the reports is a free-form status string: every attempt has
exactly one ``Outcome`` and every check exactly one ``CheckStatus``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """One class per attempt (a model answer to one task at one seed)."""

    RAN = "ran"                        # built and ran; points come from the checks
    TRUNCATED = "truncated"            # finish_reason == "length" (still graded if code was extracted)
    REASONING_ONLY = "reasoning_only"  # content empty, reasoning_content present
    EMPTY = "empty"                    # no content at all
    NO_CODE = "no_code"                # content, but no Go code in it
    BUILD_FAILED = "build_failed"      # Go code that does not compile
    GRADING_ERROR = "grading_error"    # our fault: never counted against the model
    ENDPOINT_ERROR = "endpoint_error"  # the endpoint failed after bounded retries

    @property
    def counts_against_model(self) -> bool:
        return self not in (Outcome.GRADING_ERROR, Outcome.ENDPOINT_ERROR)


class CheckStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_RUN = "not_run"   # prevented by an earlier failure (build, crash): scores 0
    ERROR = "error"       # the grader itself failed on this check


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: CheckStatus
    points: float
    max_points: float
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status is CheckStatus.PASS

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CheckResult:
        return cls(
            name=str(d["name"]),
            status=CheckStatus(d["status"]),
            points=float(d["points"]),
            max_points=float(d["max_points"]),
            detail=str(d.get("detail", "")),
        )

    @classmethod
    def passing(cls, name: str, max_points: float, detail: str = "") -> CheckResult:
        return cls(name, CheckStatus.PASS, max_points, max_points, detail)

    @classmethod
    def failing(cls, name: str, max_points: float, detail: str) -> CheckResult:
        return cls(name, CheckStatus.FAIL, 0.0, max_points, detail)

    @classmethod
    def not_run(cls, name: str, max_points: float, detail: str) -> CheckResult:
        return cls(name, CheckStatus.NOT_RUN, 0.0, max_points, detail)


@dataclass(frozen=True)
class Grade:
    """The grade of one piece of Go source for one task, by one grader version.

    ``max_points`` is the task's fixed denominator: a build failure or crash scores 0
    on every check it prevented, and the denominator does not shrink.
    """

    outcome: Outcome
    points: float
    max_points: float
    checks: tuple[CheckResult, ...] = ()
    explanation: str = ""
    grader_hash: str = ""
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str) -> CheckResult:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "points": self.points,
            "max_points": self.max_points,
            "checks": [c.to_json() for c in self.checks],
            "explanation": self.explanation,
            "grader_hash": self.grader_hash,
            "duration_s": self.duration_s,
            "details": self.details,
        }


def total(checks: list[CheckResult] | tuple[CheckResult, ...]) -> tuple[float, float]:
    """Points and max points of a list of checks, rounded to avoid float dust."""
    pts = round(sum(c.points for c in checks), 6)
    mx = round(sum(c.max_points for c in checks), 6)
    return pts, mx


@dataclass(frozen=True)
class CellKey:
    """One cell of a sweep: a model's answer to one task of one exam version, at one
    seed and one turn."""

    model: str
    exam: str
    exam_version: int
    task: str
    seed: int
    turn: int = 1            # repair turns: 1 = the first answer (harness.grade.feedback)

    def label(self) -> str:
        label = f"{self.model} / {self.exam} v{self.exam_version} / {self.task} / seed {self.seed}"
        return label + (f" / turn {self.turn}" if self.turn != 1 else "")

    def at_turn(self, turn: int) -> CellKey:
        """The same cell at another turn."""
        return CellKey(self.model, self.exam, self.exam_version, self.task, self.seed, turn)
