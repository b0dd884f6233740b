"""Re-grading stored answers with the current grader, without calling any model."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from harness.exams import Exam, exam_dirs, load_exam
from harness.gotool import Toolchain
from harness.runner import Event, grade_attempt
from harness.store import AttemptRow, Store


def installed_exams() -> dict[tuple[str, int], Exam]:
    out = {}
    for path in exam_dirs().values():
        exam = load_exam(path)
        out[(exam.id, exam.version)] = exam
    return out


def regrade_store(
    store: Store,
    toolchain: Toolchain,
    *,
    exams: dict[tuple[str, int], Exam] | None = None,
    workers: int = 2,
    progress: Callable[[Event], None] | None = None,
) -> int:
    """Grade every stored answer that has no grade by its exam's current grader.
    Old grades stay in the store; reports use the current grader's. Answers to an
    exam version that is no longer installed are left alone (and reported)."""
    exams = installed_exams() if exams is None else exams
    hashes = {k: e.grader_hash for k, e in exams.items()}
    todo = store.attempts_needing_grade(hashes)
    emit = progress or (lambda e: None)
    orphans = {(r["exam"], r["exam_version"]) for r in store.query(
        "SELECT DISTINCT exam, exam_version FROM attempts")} - set(exams)
    for exam_id, version in sorted(orphans):
        emit(Event("info", f"{exam_id} v{version} is not installed; its answers keep their stored grades"))

    def one(att: AttemptRow) -> None:
        exam = exams[(att.key.exam, att.key.exam_version)]
        grade = grade_attempt(exam, exam.task(att.key.task), att, toolchain)
        store.save_grade(att.id, grade, go_version=toolchain.version)
        emit(Event("graded", f"{grade.points:g}/{grade.max_points:g} {grade.explanation}", att.key,
                   grade.outcome.value, total=len(todo)))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, todo))
    return len(todo)
