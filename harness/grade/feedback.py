"""Repair turns: the message that continues a conversation after an answer without
full marks (``sweep run --turns N``), and the seed of each turn.

The message carries what a developer would see, never what the exam hides:

* a build failure: the grader's one-line reason and the compiler's output for the
  answer's own source (the first ``BUILD_OUTPUT_CHARS`` characters);
* each failing check (status ``fail``; checks that did not run because an earlier
  step failed are left out): its name and its detail, each detail cut to
  ``DETAIL_CHARS`` characters, at most ``MAX_FAILURES`` checks;
* stdio exams: a case whose output differs says only "output differs from the
  expected output". The grader's detail for it quotes the hidden expected line
  ("line 2: expected '...', got '...'"), so it is never sent; a case whose program
  crashed, timed out or exited non-zero says how, with the first line of the
  program's own stderr;
* checks and gotest exams: the check's detail as its grader wrote it (checks.py's
  message, the test's failure output); a gotest answer the exam's tests do not
  compile with says so in its checks' details. The check code, the test files and
  the test build's full log are never sent;
* an answer without code (empty, only reasoning, cut off, no Go code) says which.

Grades that are not the model's fault (``grading_error``, ``endpoint_error``) end
the conversation: there is nothing fair to feed back. The whole message is cut to
``MESSAGE_CHARS`` characters.

The message is rendered from a jinja2 template: the exam's ``feedback.j2`` when its
directory has one, else ``DEFAULT_TEMPLATE``. The template file and this module are
part of the exam's grader hash (``harness.exams.exam``), so a changed message never mixes
with results of the old one.

Turn seeds: turn 1 sends the cell's seed; turn k sends
``(seed + k - 1) % (2**32 - 1)`` (:func:`turn_seed`), which stays in the range
llama.cpp takes (0 .. 2**32 - 2), so a rerun sends the same seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2

from harness.errors import ExamError
from harness.exams.exam import Exam, Task
from harness.results import CheckStatus, Grade, Outcome

TEMPLATE_FILE = "feedback.j2"
DETAIL_CHARS = 300          # per failing check
MAX_FAILURES = 20           # failing checks listed
BUILD_OUTPUT_CHARS = 2000   # compiler output
MESSAGE_CHARS = 6000        # the whole message
OUTPUT_DIFFERS = "output differs from the expected output"
SEED_MODULUS = 2**32 - 1

DEFAULT_TEMPLATE = """\
{{ summary }} ({{ points }}/{{ max_points }} points).
{% if build_output %}

Compiler output:
```
{{ build_output }}
```
{% endif %}
{% if failures %}

Failing checks:
{% for f in failures %}
- {{ f.name }}: {{ f.detail }}
{% endfor %}
{% if more_failures %}
- ... and {{ more_failures }} more
{% endif %}
{% endif %}

Fix the program. Reply with the complete corrected program in one ```go code block.
"""

_SUMMARY = {
    Outcome.BUILD_FAILED: "Your program does not build",
    Outcome.RAN: "Your program builds but does not pass every check",
    Outcome.TRUNCATED: "Your answer was cut off at the token limit",
    Outcome.REASONING_ONLY: "Your answer had reasoning but no content",
    Outcome.EMPTY: "Your answer was empty",
    Outcome.NO_CODE: "Your answer contained no Go code",
}


def turn_seed(seed: int, turn: int) -> int:
    """The seed sent on ``turn`` (1-based) of a cell whose seed is ``seed``."""
    return (seed + turn - 1) % SEED_MODULUS


def continues(grade: Grade) -> bool:
    """Whether a conversation goes on after this grade: the model's answer lacks full
    marks, and the grade is the model's doing (not an endpoint or grading error)."""
    return grade.outcome.counts_against_model and grade.points < grade.max_points


@dataclass(frozen=True)
class Failure:
    name: str
    detail: str


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def safe_detail(exam: Exam, name: str, detail: str) -> str:
    """What of a failing check's detail may be shown to the model (module docstring)."""
    # any mention of the expected output (the stdio grader's "line N: expected '...', got
    # '...'" among them) would show the model the hidden case
    if exam.manifest.grader == "stdio" and name.startswith("case:") and "expected" in detail:
        return OUTPUT_DIFFERS
    return _cut(" ".join(detail.split()), DETAIL_CHARS)


def template(exam: Exam) -> str:
    """The exam's feedback template (``feedback.j2``), else ``DEFAULT_TEMPLATE``."""
    path = exam.root / TEMPLATE_FILE
    return path.read_text(encoding="utf-8") if path.is_file() else DEFAULT_TEMPLATE


def context(exam: Exam, task: Task, grade: Grade, turn: int) -> dict[str, Any]:
    """What the template sees: ``summary``, ``outcome``, ``points``, ``max_points``,
    ``build_output`` (None unless the build failed), ``failures`` (name, detail),
    ``more_failures``, ``turn`` (the turn graded) and ``task`` (its id)."""
    failing = [c for c in grade.checks if c.status is CheckStatus.FAIL]
    failures = [Failure(c.name, safe_detail(exam, c.name, c.detail)) for c in failing[:MAX_FAILURES]]
    build_output = None
    if grade.outcome is Outcome.BUILD_FAILED:
        log = grade.details.get("build_log")
        build_output = _cut(str(log), BUILD_OUTPUT_CHARS) if log else None
    summary = _SUMMARY.get(grade.outcome, "Your program does not pass every check")
    if grade.outcome is Outcome.TRUNCATED and grade.checks and any(c.status is not CheckStatus.NOT_RUN
                                                                   for c in grade.checks):
        summary += "; the code it had was graded"
    return {"summary": summary, "outcome": grade.outcome.value, "points": f"{grade.points:g}",
            "max_points": f"{grade.max_points:g}", "build_output": build_output, "failures": failures,
            "more_failures": max(0, len(failing) - MAX_FAILURES), "turn": turn, "task": task.id}


def message(exam: Exam, task: Task, grade: Grade, turn: int) -> str:
    """The user message that follows the answer of ``turn`` graded ``grade``."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,
                             trim_blocks=True, lstrip_blocks=True)
    try:
        text = env.from_string(template(exam)).render(**context(exam, task, grade, turn))
    except jinja2.TemplateError as e:
        raise ExamError(f"exam '{exam.id}': feedback template fails: {e}",
                        hint=f"fix {exam.root / TEMPLATE_FILE}") from e
    return _cut(text, MESSAGE_CHARS)
