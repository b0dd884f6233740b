"""Grading a model's answer: the grading entry point of the sweep and of re-grading.

A grade is a function of the stored answer and the exam alone. The answer is what
the endpoint sent back, as stored with the attempt (``content``,
``reasoning_content``, ``finish_reason``); grading classifies it (empty, only
reasoning, cut off, no Go code), extracts the Go code of the task's package
(``harness.grade.extract``: ``main`` for a program, the exam's test package for a
``gotest`` exam) and builds and runs it (``harness.grade.grading``): one file, or the
files of one package when the answer names them. The extracted code stored with an
attempt when it was generated is for display: grading never reads it, so
``sweep regrade`` after a change of the extraction rules grades the new
extraction, and an answer that now has code (or no longer has) changes class.

The grader hash (``harness.exams.exam``) covers this module and every module of ours it
imports, transitively.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.errors import GradingError
from harness.exams.exam import Exam, Task
from harness.grade import grading
from harness.grade.extract import Extraction, extract_go
from harness.grade.gotest import test_package
from harness.results import CheckResult, Grade, Outcome
from harness.runtime.gotool import Toolchain

__all__ = ["GEN_OK", "Answer", "Classification", "classify", "extract_answer", "extraction_record", "grade_answer",
           "task_package"]

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
    code: str | None        # the Go code to build, when any was found (several files: joined)
    method: str | None      # the extraction's method; None when nothing was extracted
    note: str               # short human explanation
    extraction: Extraction | None = None   # what the extraction took, dropped and refused
    files: dict[str, str] = field(default_factory=dict)   # several files: name -> source; {} for one

    def source(self) -> str | dict[str, str] | None:
        """What to build: the files when the answer has several, else the code."""
        return dict(self.files) if self.files else self.code

    def record(self) -> dict[str, object]:
        """The extraction as stored in a grade's details (``details["extraction"]``)."""
        if self.extraction is None:
            return {"method": self.method, "note": self.note, "code": self.code}
        return {**extraction_record(self.extraction), "method": self.method, "note": self.note, "code": self.code}


def extraction_record(ex: Extraction) -> dict[str, object]:
    """An extraction as stored in a grade's details: method, note, code, the blocks
    taken and dropped, the file names refused, and the files when there are several."""
    out: dict[str, object] = {"method": ex.method, "note": ex.note, "code": ex.code, "taken": list(ex.taken),
                              "dropped": list(ex.dropped), "refused": list(ex.refused)}
    if ex.files:
        out["files"] = dict(ex.files)
    return out


def task_package(exam: Exam, task: Task) -> str:
    """The package the task's answer declares: the exam's test package for a gotest
    exam, else ``main``. Test files that do not agree are reported by the grading
    itself (a grading error); extraction then looks for ``main``."""
    if exam.manifest.grader != "gotest":
        return "main"
    try:
        return test_package(exam, task)
    except GradingError:
        return "main"


def extract_answer(exam: Exam, task: Task, text: str) -> Extraction:
    """The Go code of an answer to ``task`` (``harness.grade.extract``, with the task's package)."""
    return extract_go(text, task_package(exam, task))


def classify(answer: Answer, package: str = "main") -> Classification:
    """What kind of answer this is, and its Go code of package ``package``
    (``harness.grade.extract``)."""
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
    ex = extract_go(content, package)
    if truncated:
        return Classification(Outcome.TRUNCATED.value, ex.code, ex.method, "hit max_tokens; " + ex.note, ex,
                              ex.files)
    if ex.code is None:
        return Classification(Outcome.NO_CODE.value, None, ex.method, ex.note, ex)
    return Classification(GEN_OK, ex.code, ex.method, ex.note, ex, ex.files)


_NO_CODE_WHY = {
    Outcome.TRUNCATED.value: "the answer was cut off at max_tokens before any code",
    Outcome.REASONING_ONLY.value: "the answer had reasoning but no content",
    Outcome.EMPTY.value: "the answer was empty",
    Outcome.NO_CODE.value: "the answer contained no Go code",
}


def grade_answer(exam: Exam, task: Task, answer: Answer, toolchain: Toolchain) -> Grade:
    """Grade an answer to ``task``: answers without code get every check NOT_RUN at
    0 points with their class; code is built and run. The grade's details record
    the extraction it graded (``details["extraction"]``: method, note, code, the
    blocks taken and dropped and the file names refused, and the files when the
    answer has several)."""
    names = grading.check_names(exam, task)
    if answer.endpoint_error is not None:
        checks = tuple(CheckResult.not_run(n, p, answer.endpoint_error) for n, p in names)
        return Grade(Outcome.ENDPOINT_ERROR, 0.0, task.points, checks, answer.endpoint_error,
                     grader_hash=exam.grader_hash)
    c = classify(answer, task_package(exam, task))
    extraction = c.record()
    source = c.source()
    if source is None:
        why = _NO_CODE_WHY[c.gen_outcome]
        checks = tuple(CheckResult.not_run(n, p, why) for n, p in names)
        return Grade(Outcome(c.gen_outcome), 0.0, task.points, checks, why, grader_hash=exam.grader_hash,
                     details={"extraction": extraction})
    g = grading.grade_source(exam, task, source, toolchain)
    details = {**g.details, "extraction": extraction}
    if c.gen_outcome == Outcome.TRUNCATED.value and g.outcome is not Outcome.GRADING_ERROR:
        return Grade(Outcome.TRUNCATED, g.points, g.max_points, g.checks,
                     f"truncated at max_tokens; {g.explanation}", g.grader_hash, g.duration_s, details)
    return Grade(g.outcome, g.points, g.max_points, g.checks, g.explanation, g.grader_hash, g.duration_s, details)
