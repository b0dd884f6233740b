"""Grading one piece of Go source for one task, by execution.

``grade_source`` builds the code with the shared toolchain (and with ``-race`` when
the grader asks), then hands the binaries to the exam's grader (``harness.grade.graders``:
one class per kind, ``grader_for(exam)``), inside one cgroup for the whole grading.

The denominator is fixed: a build failure scores 0 on every declared check and the
grade still has the task's full ``max_points``. Faults of ours (a sandbox that did
not start, a crashed driver before any program ran, a build past our time limit
while the other build succeeded) are ``grading_error``; what breaks while the
grading's own process or memory limit is exhausted is the answer's doing.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from harness.errors import ExamError, GradingError
from harness.exams.exam import Exam, Task
from harness.grade.checks import ChecksGrader
from harness.grade.extract import join_files
from harness.grade.gotest import ANSWER_FILE, GotestGrader
from harness.grade.graders import AnswerBuildFailed, Grader, GradingRun
from harness.grade.stdio import StdioGrader, normalize_output
from harness.results import CheckResult, CheckStatus, Grade, Outcome, total
from harness.runtime import proc, sandbox
from harness.runtime.gotool import BuildResult, BuildStatus, Toolchain, explain_build

__all__ = ["GRADERS", "answer_files", "check_names", "grade_source", "grader_for", "normalize_output", "printable"]

GRADERS: dict[str, Grader] = {g.kind: g for g in (StdioGrader(), ChecksGrader(), GotestGrader())}


def grader_for(exam: Exam) -> Grader:
    return GRADERS[exam.manifest.grader]


def check_names(exam: Exam, task: Task) -> list[tuple[str, float]]:
    """The task's checks and their points, in report order (the fixed denominator)."""
    return task.declared_checks(exam.manifest.grader)


def answer_files(exam: Exam, source: str | Mapping[str, str]) -> dict[str, str]:
    """The files to build: a mapping as given (the files of one package, named by the
    extraction), one source as ``answer.go`` for a gotest exam, else ``main.go``."""
    if isinstance(source, str):
        return {ANSWER_FILE if exam.manifest.grader == "gotest" else "main.go": source}
    return dict(source)


def grade_source(
    exam: Exam,
    task: Task,
    source: str | Mapping[str, str],
    toolchain: Toolchain,
    *,
    scratch_parent: Path | None = None,
) -> Grade:
    """Build and score ``source`` (one file, or file name -> source for an answer in
    several files); returns a Grade (a grading_error Grade when our own
    infrastructure failed). Leaves nothing behind in ``scratch_parent``."""
    started = time.monotonic()
    names = check_names(exam, task)
    workdir = Path(tempfile.mkdtemp(prefix=sandbox.scratch_prefix(exam.id, task.id), dir=scratch_parent))
    os.chmod(workdir, 0o711)   # the unprivileged uids (as root) walk to their files; nobody lists it
    try:
        grade = _grade_in(exam, task, answer_files(exam, source), toolchain, workdir, names)
    except ExamError:
        raise
    except GradingError as e:
        grade = _error_grade(names, task, e.message)
    except Exception as e:  # noqa: BLE001 - anything unexpected is our fault, not the model's
        grade = _error_grade(names, task, f"{type(e).__name__}: {e}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # Details quote what the program and the compiler printed: no terminal control
    # sequences reach a user's terminal through `sweep grade` or `sweep logs`.
    return Grade(
        outcome=grade.outcome,
        points=grade.points,
        max_points=grade.max_points,
        checks=tuple(CheckResult(c.name, c.status, c.points, c.max_points, printable(c.detail)) for c in grade.checks),
        explanation=printable(grade.explanation),
        grader_hash=exam.grader_hash,
        duration_s=round(time.monotonic() - started, 3),
        details=grade.details,
    )


def _error_grade(names: list[tuple[str, float]], task: Task, why: str) -> Grade:
    checks = tuple(CheckResult(n, CheckStatus.ERROR, 0.0, p, why) for n, p in names)
    return Grade(Outcome.GRADING_ERROR, 0.0, task.points, checks, f"grading error: {why}")


def _build_failed(names: list[tuple[str, float]], task: Task, build: BuildResult) -> Grade:
    why = explain_build(build)
    if build.status is BuildStatus.ENVIRONMENT_ERROR:
        return _error_grade(names, task, f"build environment: {why}")
    checks = []
    for n, p in names:
        if n == "build":
            checks.append(CheckResult.failing(n, p, why))
        else:
            checks.append(CheckResult.not_run(n, p, "the program did not build"))
    return Grade(Outcome.BUILD_FAILED, 0.0, task.points, tuple(checks), f"build failed: {why}",
                 details={"build_log": build.log[-4000:], "build_status": build.status.value,
                          "isolation": sandbox.current().label()})


def _grader_build_failed(names: list[tuple[str, float]], task: Task, e: AnswerBuildFailed) -> Grade:
    checks = tuple(CheckResult.failing(n, p, f"build: {e.reason}") for n, p in names)
    return Grade(Outcome.BUILD_FAILED, 0.0, task.points, checks, f"build failed: {e.reason}",
                 details={**e.details, "build_log": e.log[-4000:], "build_status": "tests_failed_to_compile"})


def _grade_in(
    exam: Exam,
    task: Task,
    source: dict[str, str],
    toolchain: Toolchain,
    workdir: Path,
    names: list[tuple[str, float]],
) -> Grade:
    limits = exam.manifest.limits
    race_build: BuildResult | None = None
    grader = grader_for(exam)
    if grader.needs_race(task):
        # Both at once: the normal build's result decides first, as if it ran alone.
        build, race_build = toolchain.build_with_race(source, workdir, timeout_s=limits.build_timeout_s)
        # One build of the source ran past our time limit while the other built it: the
        # machine was slow (our fault), not the code. Try that build once more alone.
        if build.ok and race_build.status is BuildStatus.TIMEOUT:
            race_build = toolchain.build(source, workdir, race=True, timeout_s=limits.build_timeout_s)
            if race_build.status is BuildStatus.TIMEOUT:
                raise GradingError(f"the -race build ran past {limits.build_timeout_s:.0f}s twice while the normal "
                                   "build succeeded (machine too slow? raise build_timeout_s)")
        elif race_build.ok and build.status is BuildStatus.TIMEOUT:
            build = toolchain.build(source, workdir, timeout_s=limits.build_timeout_s)
            if build.status is BuildStatus.TIMEOUT:
                raise GradingError(f"the build ran past {limits.build_timeout_s:.0f}s twice while the -race build "
                                   "succeeded (machine too slow? raise build_timeout_s)")
    else:
        build = toolchain.build(source, workdir, timeout_s=limits.build_timeout_s)
    if not build.ok:
        return _build_failed(names, task, build)
    box = sandbox.current()
    with box.grading_group(memory_bytes=limits.grading_memory_mb * proc.MiB) as group:
        try:
            grade = _run_phase(exam, task, build, race_build, workdir, names, box, group, source, toolchain)
            error: GradingError | None = None
        except AnswerBuildFailed as e:
            grade, error = _grader_build_failed(names, task, e), None
        except GradingError as e:
            grade, error = _error_grade(names, task, e.message), e
        ooms = group.oom_kills()
        peak = group.memory_peak()
        forks = group.pids_limit_hits()
    errored = [c for c in grade.checks if c.status is CheckStatus.ERROR]
    if errored or error is not None:
        if not (ooms or forks):
            if error is not None:
                raise error
            raise GradingError(f"check {errored[0].name} errored: {errored[0].detail}")
        # The grading's own limits were hit (its processes exhausted the memory or the
        # process count we give a grading): what broke then is the program's doing.
        grade = _limits_hit(grade)
    details = dict(grade.details)
    details["isolation"] = box.label()
    if peak is not None:
        details["memory_peak_mb"] = round(peak / proc.MiB, 1)
    checks = grade.checks
    why = ""      # what the failing checks' details add: the grading's limits that were hit
    if forks:
        details["pids_limit_hits"] = forks
        why += (f" [the grading's process limit ({group.pids_max} processes and threads) was reached {forks} "
                "time(s)]")
    if ooms:
        details["oom_kills"] = ooms
        why += (f" [the grading's memory limit of {limits.grading_memory_mb} MiB was exceeded: the kernel killed "
                f"{ooms} process(es)]")
    if why:
        checks = tuple(c if c.passed else CheckResult(c.name, c.status, c.points, c.max_points, c.detail + why)
                       for c in checks)
    return Grade(grade.outcome, grade.points, grade.max_points, checks, grade.explanation, details=details)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters (escape sequences among them) shown as
    ``\\xNN``; newlines and tabs stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _limits_hit(grade: Grade) -> Grade:
    """A grade whose errors came while the grading's limits were exhausted: the
    checks that errored (all of them, if the driver failed as a whole) fail."""
    return _ran([CheckResult.failing(c.name, c.max_points, f"could not be checked: {c.detail}")
                 if c.status is CheckStatus.ERROR else c for c in grade.checks], dict(grade.details))


def _ran(checks: list[CheckResult], details: dict[str, object]) -> Grade:
    pts, mx = total(checks)
    failed = [c.name for c in checks if not c.passed]
    expl = "all checks passed" if not failed else "failed: " + ", ".join(failed)
    return Grade(Outcome.RAN, pts, mx, tuple(checks), expl, details=details)


def _run_phase(
    exam: Exam,
    task: Task,
    build: BuildResult,
    race_build: BuildResult | None,
    workdir: Path,
    names: list[tuple[str, float]],
    box: sandbox.Sandbox,
    group: sandbox.Group,
    files: dict[str, str],
    toolchain: Toolchain,
) -> Grade:
    run = GradingRun(exam, task, build, race_build, workdir, names, box, group, join_files(files), toolchain, files)
    checks, notes = grader_for(exam).score(run)
    return _ran(checks, {"build_s": round(build.wall_s, 3), **notes})
