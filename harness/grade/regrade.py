"""Re-grading stored answers with the current grader, without calling any model.

Each stored answer is graded again from the answer itself (``harness.grade.answers``),
so a change anywhere in grading, extraction included, reaches old answers. The
exam of each stored exam version is loaded from the directory the store's latest
run recorded for it (an exam passed as a directory is found again), else from the
installed exams. A regrade is a run: it records the grader it used per exam
version, which then becomes the current one for reports and ``sweep logs``.

A grading error is ours, never the model's (a machine too slow for a run that was
working, a sandbox that failed to start): it is graded once more, automatically, at
the end of the sweep or regrade that produced it (:func:`retry_grade`), and
``sweep regrade`` grades again every stored answer whose current grade is one. The
retry's grade takes the error's place in the store (one grade per answer and
grader) and says it was a retry: ``details.retry`` holds the first error, and its
explanation notes it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.errors import ExamError
from harness.events import Event, EventKind, ignore
from harness.exams.exam import Exam, Task, exam_dirs, load_exam
from harness.grade.answers import Answer, grade_answer
from harness.results import Grade, Outcome
from harness.runtime.gotool import Toolchain
from harness.runtime.host import host_info, tool_version
from harness.store import queries
from harness.store.db import AttemptRow, Store


def grade_attempt(exam: Exam, task: Task, attempt: AttemptRow, toolchain: Toolchain) -> Grade:
    """Grade a stored attempt from its stored answer (never its stored extracted code)."""
    endpoint_error = None
    if attempt.gen_outcome == Outcome.ENDPOINT_ERROR.value:
        endpoint_error = attempt.error or "the endpoint failed"
    answer = Answer(attempt.content, attempt.reasoning_content, attempt.finish_reason, endpoint_error)
    return grade_answer(exam, task, answer, toolchain)


def retry_grade(exam: Exam, task: Task, attempt: AttemptRow, toolchain: Toolchain, first: Grade) -> Grade:
    """Grade ``attempt`` once more after its grading ``first`` ended in a grading
    error; the grade says so (``details.retry``: the attempt number and the first
    error; the explanation notes it). Store it with ``save_grade(retry=True)``."""
    again = grade_attempt(exam, task, attempt, toolchain)
    why = first.explanation.removeprefix("grading error: ")
    note = (f" [graded twice: the first grading failed ({why[:300]})]" if again.outcome is not Outcome.GRADING_ERROR
            else " [graded twice: both gradings failed]")
    return dataclasses.replace(again, explanation=again.explanation + note,
                               details={**again.details, "retry": {"attempt": 2, "first_error": why[:1000]}})


def installed_exams() -> dict[tuple[str, int], Exam]:
    out = {}
    for path in exam_dirs().values():
        exam = load_exam(path)
        out[(exam.id, exam.version)] = exam
    return out


def stored_exams(store: Store, emit: Callable[[Event], None] | None = None) -> dict[tuple[str, int], Exam]:
    """The exam of every exam version with stored answers: from the directory the
    latest run recorded for it when it still holds that exam and version, else the
    installed one. Exam versions found nowhere are left out (and reported)."""
    emit = emit or ignore
    wanted = queries.stored_exam_versions(store)
    recorded = queries.current_graders(store)
    installed: dict[tuple[str, int], Exam] | None = None
    out: dict[tuple[str, int], Exam] = {}
    for key in wanted:
        rec = recorded.get(key)
        if rec is not None and rec.exam_dir is not None and (Path(rec.exam_dir) / "exam.toml").is_file():
            try:
                exam = load_exam(Path(rec.exam_dir))
            except ExamError as e:
                emit(Event(EventKind.INFO, f"{key[0]} v{key[1]}: the recorded exam at {rec.exam_dir} does not load "
                                   f"({e.one_line()}); trying the installed exams"))
            else:
                if (exam.id, exam.version) == key:
                    out[key] = exam
                    continue
        if installed is None:
            installed = installed_exams()
        if key in installed:
            out[key] = installed[key]
        else:
            where = f" (nor at {rec.exam_dir})" if rec is not None and rec.exam_dir else ""
            emit(Event(EventKind.INFO, f"{key[0]} v{key[1]} is not installed{where}; its answers keep their stored grades"))
    return out


def regrade_store(
    store: Store,
    toolchain: Toolchain,
    *,
    exams: dict[tuple[str, int], Exam] | None = None,
    workers: int = 2,
    progress: Callable[[Event], None] | None = None,
    command: str = "sweep regrade",
) -> int:
    """Grade every stored answer that has no grade by its exam's current grader
    (``exams``, else :func:`stored_exams`). Old grades stay in the store; the run
    records the graders it used, so reports show the new grades as current."""
    emit = progress or ignore
    exams = stored_exams(store, emit) if exams is None else exams
    stored = set(queries.stored_exam_versions(store))
    exams = {k: e for k, e in exams.items() if k in stored}
    hashes = {k: e.grader_hash for k, e in exams.items()}
    todo = queries.attempts_needing_grade(store, hashes)
    errored = queries.attempts_with_grading_error(store, hashes)    # graded again: ours, not the model's
    run_id = store.start_run(command=command, config={"workers": workers}, tool_version=tool_version(),
                             go_version=toolchain.version, go_source=toolchain.source, host=host_info())
    status, error = "failed", None
    try:
        store.record_graders(run_id, [(e.id, e.version, e.grader_hash, str(e.root.resolve()))
                                      for _, e in sorted(exams.items())])

        failed: list[tuple[AttemptRow, Grade]] = []
        lock = threading.Lock()
        total = len(todo) + len(errored)

        def one(att: AttemptRow) -> None:
            exam = exams[(att.key.exam, att.key.exam_version)]
            grade = grade_attempt(exam, exam.task(att.key.task), att, toolchain)
            store.save_grade(att.id, grade, go_version=toolchain.version)
            if grade.outcome is Outcome.GRADING_ERROR:
                with lock:
                    failed.append((att, grade))
            emit(Event(EventKind.GRADED, grade.explanation, att.key, grade.outcome.value, total=total,
                       points=grade.points, max_points=grade.max_points))

        def again(item: tuple[AttemptRow, Grade]) -> None:
            att, first = item
            exam = exams[(att.key.exam, att.key.exam_version)]
            grade = retry_grade(exam, exam.task(att.key.task), att, toolchain, first)
            store.save_grade(att.id, grade, go_version=toolchain.version, retry=True)
            emit(Event(EventKind.GRADED, grade.explanation, att.key, grade.outcome.value, total=total,
                       points=grade.points, max_points=grade.max_points))

        if errored:
            emit(Event(EventKind.INFO, f"{len(errored)} stored answer(s) whose grade is a grading error: grading "
                                       "them again"))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            list(pool.map(one, todo))
            stored_errors = []
            for a in errored:
                first = queries.grade_of(store, a.id, hashes[(a.key.exam, a.key.exam_version)])
                assert first is not None
                stored_errors.append((a, first))
            list(pool.map(again, stored_errors))
            if failed:
                emit(Event(EventKind.INFO, f"{len(failed)} grading error(s): retrying each once"))
                list(pool.map(again, list(failed)))
        status = "done"
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted by the user"
        raise
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        store.finish_run(run_id, status, error)
    return len(todo)


def describe(store: Store, graded: int) -> str:
    """What a regrade found, in one line: how many stored answers it graded, how many
    already had a grade by the current grader, and how many keep an older grade
    because their exam is not installed. Call after :func:`regrade_store`."""
    current = queries.current_hashes(store)
    answers = queries.answers_per_exam_version(store)
    total = sum(answers.values())
    orphaned = sum(n for key, n in answers.items() if key not in current)
    missing = len(queries.attempts_needing_grade(store, current))
    already = total - orphaned - missing - graded
    if total == 0:
        return "no stored answers to grade (endpoint errors have none)"
    parts = [f"graded {graded} of {total} stored answer(s) with the current grader" if graded else
             f"nothing to regrade: {already} of {total} stored answer(s) already had a grade by the current grader"]
    if graded and already:
        parts.append(f"{already} already had one")
    if orphaned:
        parts.append(f"{orphaned} keep their stored grade (exam not installed)")
    if missing:
        parts.append(f"{missing} still without a current grade")
    return "; ".join(parts)
