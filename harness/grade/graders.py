"""What a grader is: the seam between building an answer and scoring it.

A grader kind (``grader = "..."`` in exam.toml) is one class implementing
:class:`Grader`; ``harness.grade.grading`` builds the answer once and hands the built
binaries to it. The kinds:

* ``stdio`` (:mod:`harness.grade.stdio`): hidden cases on stdin/argv, stdout compared;
* ``checks`` (:mod:`harness.grade.checks`): the exam's ``checks.py`` drives the binary
  in a check driver (``harness.grade.driver``);
* ``gotest`` (:mod:`harness.grade.gotest`): the exam's ``*_test.go`` files compiled
  into the answer's package, each listed test or subtest a check.

Every kind declares its checks from the manifest alone (``Task.declared_checks``):
the fixed denominator never depends on running exam code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol

from harness.exams.exam import Exam, Task
from harness.results import CheckResult
from harness.runtime import proc, sandbox
from harness.runtime.gotool import BuildResult, Toolchain


@dataclass(frozen=True)
class GradingRun:
    """One grading of one answer, after its build succeeded."""

    exam: Exam
    task: Task
    build: BuildResult                  # ok: build.binary exists
    race_build: BuildResult | None      # when the task asks for -race
    workdir: Path                       # the grading's scratch directory
    names: list[tuple[str, float]]      # the declared checks (fixed denominator)
    box: sandbox.Sandbox
    group: sandbox.Group                # every process of the grading joins it
    source: str                         # the answer's Go source: its one file, or all files joined
                                        # (harness.grade.extract.join_files), for graders that read text
    toolchain: Toolchain                # the toolchain that built it (a grader may build more)
    # The answer's files as built: file name -> source. One file is {"main.go": src} for a
    # program, {"answer.go": src} for a gotest package; an answer the extraction assembled
    # from several named files has their names (checked there: no path, no _test.go).
    files: dict[str, str] = field(default_factory=dict)

    @property
    def binary(self) -> Path:
        assert self.build.binary is not None
        return self.build.binary


class AnswerBuildFailed(Exception):
    """Raised by a grader whose own build of the answer failed by the answer's doing
    (a gotest exam's tests that do not compile with it): the grade is
    ``build_failed`` with ``reason``, not a run that failed every check."""

    def __init__(self, reason: str, log: str, details: dict[str, object] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.log = log
        self.details = details or {}


class Grader(Protocol):
    kind: ClassVar[str]

    def needs_race(self, task: Task) -> bool:
        """Whether the answer is also built with -race."""
        ...

    def score(self, run: GradingRun) -> tuple[list[CheckResult], dict[str, object]]:
        """One result per declared check (ERROR for a fault of ours), and notes
        stored with the grade. Raises GradingError when it cannot score at all."""
        ...

    def preflight(self, exam: Exam) -> None:
        """Raise ExamError if the exam's grading code is broken (before any request)."""
        ...


def run_limits(exam: Exam, wall_s: float | None = None) -> proc.Limits:
    """Bounds for each run of the answer's binary."""
    lim = exam.manifest.limits
    return proc.Limits(
        wall_s=wall_s if wall_s is not None else lim.run_timeout_s,
        cpu_s=int(max(lim.run_timeout_s, wall_s or 0)) + 5,
        address_space=lim.memory_mb * proc.MiB,
        file_size=64 * proc.MiB,
        open_files=1024,
        output_bytes=lim.output_kb * 1024,
    )
