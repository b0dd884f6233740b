"""Grading a model's answer: the grading entry point of the sweep and of re-grading.

A grade is a function of the stored answer and the exam alone. The answer is what
the endpoint sent back, as stored with the attempt (``content``,
``reasoning_content``, ``finish_reason``); grading classifies it (empty, only
reasoning, cut off, no Go code), extracts the Go code (``harness.grade.extract``) and
builds and runs it (``harness.grade.grading``). The extracted code stored with an
attempt when it was generated is for display: grading never reads it, so
``sweep regrade`` after a change of the extraction rules grades the new
extraction, and an answer that now has code (or no longer has) changes class.

The grader hash (``harness.exams.exam``) covers this module and every module of ours it
imports, transitively.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.exams.exam import Exam, Task
from harness.grade import grading
from harness.grade.extract import extract_go
from harness.results import CheckResult, Grade, Outcome
from harness.runtime.gotool import Toolchain

__all__ = ["GEN_OK", "Answer", "Classification", "classify", "grade_answer"]

GEN_OK = "ok"   # the generation outcome of an answer with Go code that was not cut off


@dataclass(frozen=True)
class Answer:
    """A model's answer as stored: the fields grading reads."""

    content: str | None
    reasoning_content: str | None = None
    finish_reason: str | None = None
    endpoint_error: str | None = None    # the endpoint failed: there is no answer, only this error


@dataclass(frozen=True)
class Classification:
    gen_outcome: str        # ok | truncated | reasoning_only | empty | no_code
    code: str | None        # the Go code to build, when any was found
    method: str | None      # the extraction's method; None when nothing was extracted
    note: str               # short human explanation


def classify(answer: Answer) -> Classification:
    """What kind of answer this is, and its Go code (``harness.grade.extract``)."""
    truncated = answer.finish_reason == "length"
    content = answer.content or ""
    if not content.strip():
        if truncated:
            where = "all of it reasoning" if answer.reasoning_content else "no content"
            return Classification(Outcome.TRUNCATED.value, None, None, f"hit max_tokens with {where}")
        if answer.reasoning_content:
            return Classification(Outcome.REASONING_ONLY.value, None, None,
                                  "content empty; the answer is only reasoning")
        return Classification(Outcome.EMPTY.value, None, None, "the answer is empty")
    ex = extract_go(content)
    if truncated:
        return Classification(Outcome.TRUNCATED.value, ex.code, ex.method, "hit max_tokens; " + ex.note)
    if ex.code is None:
        return Classification(Outcome.NO_CODE.value, None, ex.method, ex.note)
    return Classification(GEN_OK, ex.code, ex.method, ex.note)


_NO_CODE_WHY = {
    Outcome.TRUNCATED.value: "the answer was cut off at max_tokens before any code",
    Outcome.REASONING_ONLY.value: "the answer had reasoning but no content",
    Outcome.EMPTY.value: "the answer was empty",
    Outcome.NO_CODE.value: "the answer contained no Go code",
}


def grade_answer(exam: Exam, task: Task, answer: Answer, toolchain: Toolchain) -> Grade:
    """Grade an answer to ``task``: answers without code get every check NOT_RUN at
    0 points with their class; code is built and run. The grade's details record
    the extraction it graded (``details["extraction"]``: method, note, code)."""
    names = grading.check_names(exam, task)
    if answer.endpoint_error is not None:
        checks = tuple(CheckResult.not_run(n, p, answer.endpoint_error) for n, p in names)
        return Grade(Outcome.ENDPOINT_ERROR, 0.0, task.points, checks, answer.endpoint_error,
                     grader_hash=exam.grader_hash)
    c = classify(answer)
    extraction = {"method": c.method, "note": c.note, "code": c.code}
    if c.code is None:
        why = _NO_CODE_WHY[c.gen_outcome]
        checks = tuple(CheckResult.not_run(n, p, why) for n, p in names)
        return Grade(Outcome(c.gen_outcome), 0.0, task.points, checks, why, grader_hash=exam.grader_hash,
                     details={"extraction": extraction})
    g = grading.grade_source(exam, task, c.code, toolchain)
    details = {**g.details, "extraction": extraction}
    if c.gen_outcome == Outcome.TRUNCATED.value and g.outcome is not Outcome.GRADING_ERROR:
        return Grade(Outcome.TRUNCATED, g.points, g.max_points, g.checks,
                     f"truncated at max_tokens; {g.explanation}", g.grader_hash, g.duration_s, details)
    return Grade(g.outcome, g.points, g.max_points, g.checks, g.explanation, g.grader_hash, g.duration_s, details)
