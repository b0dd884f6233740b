"""Proving the grader: every reference solution must score full marks, and every
known-bad variant (and the baseline) exactly its declared points with exactly its
declared failing checks."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.exams.exam import Exam, Task
from harness.grade.answers import extract_answer
from harness.grade.extract import extract_go
from harness.grade.grading import grade_source
from harness.results import Grade
from harness.runtime.gotool import Toolchain


@dataclass(frozen=True)
class Expectation:
    exam: str
    task: str
    name: str                 # "reference", "baseline:<name>" or the variant name
    file: str
    points: float
    fail: frozenset[str]


@dataclass(frozen=True)
class Verdict:
    expectation: Expectation
    grade: Grade

    @property
    def failing(self) -> frozenset[str]:
        return frozenset(c.name for c in self.grade.checks if not c.passed)

    @property
    def ok(self) -> bool:
        return (abs(self.grade.points - self.expectation.points) < 1e-6
                and self.failing == self.expectation.fail)

    def describe(self) -> str:
        e = self.expectation
        head = f"{e.exam}/{e.task}/{e.name}: {self.grade.points:g}/{self.grade.max_points:g}"
        if self.ok:
            return head + " as expected"
        extra = sorted(self.failing - e.fail)
        missing = sorted(e.fail - self.failing)
        parts = [f"expected {e.points:g}"]
        if extra:
            parts.append("unexpectedly failed " + ", ".join(
                f"{n} ({self.grade.check(n).detail[:100]})" for n in extra))
        if missing:
            parts.append("unexpectedly passed " + ", ".join(missing))
        if self.grade.outcome.value == "grading_error":
            parts.append("grading error: " + self.grade.explanation[:200])
        return head + " -- MISMATCH: " + "; ".join(parts)


def expectations(exam: Exam, task: Task) -> list[Expectation]:
    out = [Expectation(exam.id, task.id, "reference", task.reference, task.points, frozenset())]
    if task.baseline is not None:
        b = task.baseline
        out.append(Expectation(exam.id, task.id, f"baseline:{b.name}", b.file, b.points, frozenset(b.fail)))
    for v in task.variants:
        out.append(Expectation(exam.id, task.id, v.name, v.file, v.points, frozenset(v.fail)))
    return out


def source_of(exam: Exam, rel: str) -> str:
    """A .go file is used as is; any other file is a full model answer and goes
    through code extraction, as a real answer would (several files: joined)."""
    text = exam.read(rel)
    if rel.endswith(".go"):
        return text
    code = extract_go(text).code
    return code if code is not None else ""


def graded_source(exam: Exam, task: Task, rel: str) -> str | dict[str, str]:
    """What grading builds of ``rel``: a .go file as is; any other file is a full
    model answer, extracted for ``task`` (its package) as a real answer is: one
    file, or the files it names."""
    text = exam.read(rel)
    if rel.endswith(".go"):
        return text
    found = extract_answer(exam, task, text)
    return found.files or (found.code if found.code is not None else "")


def validate_exam(
    exam: Exam,
    toolchain: Toolchain,
    *,
    workers: int = 2,
    on_verdict: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    jobs = [(task, e) for task in exam.tasks for e in expectations(exam, task)]

    def one(job: tuple[Task, Expectation]) -> Verdict:
        task, e = job
        v = Verdict(e, grade_source(exam, task, graded_source(exam, task, e.file), toolchain))
        if on_verdict:
            on_verdict(v)
        return v

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, jobs))
