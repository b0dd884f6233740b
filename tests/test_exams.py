"""Every built-in exam proves its grader: the reference scores full marks, and each
known-bad variant (and the baseline) loses exactly the points it should, graded
with real Go builds and real runs."""

from __future__ import annotations

import pytest

from harness.errors import ExamError
from harness.exams import all_exams, load_exam
from harness.grading import grade_source
from harness.validate import Verdict, expectations, source_of

CASES = [(exam, task, e) for exam in all_exams() for task in exam.tasks for e in expectations(exam, task)]


def test_there_are_exams_and_variants():
    ids = {exam.id for exam, _, _ in CASES}
    assert "go-basics" in ids
    for exam in all_exams():
        for task in exam.tasks:
            assert len(task.variants) >= 3, f"{exam.id}/{task.id} needs known-bad variants"


@pytest.mark.slow
@pytest.mark.parametrize("exam, task, expectation", CASES,
                         ids=[f"{x.id}/{t.id}/{e.name}" for x, t, e in CASES])
def test_expectation(exam, task, expectation, toolchain):
    grade = grade_source(exam, task, source_of(exam, expectation.file), toolchain)
    v = Verdict(expectation, grade)
    assert v.ok, v.describe()


def test_every_variant_check_can_fail():
    """Each check of each task is failed by at least one known-bad variant, so no
    check is untested."""
    from harness.grading import check_names

    for exam in all_exams():
        for task in exam.tasks:
            names = {n for n, _ in check_names(exam, task)}
            failed = set().union(*(set(v.fail) for v in task.variants))
            assert names <= failed, f"{exam.id}/{task.id}: no variant fails {sorted(names - failed)}"


def test_manifest_typos_are_caught(tmp_path):
    import shutil

    src = next(e for e in all_exams() if e.id == "go-basics").root
    dst = tmp_path / "go-basics"
    shutil.copytree(src, dst)
    toml = (dst / "exam.toml").read_text()
    first_fail = toml.index("fail = [")
    broken = toml[:first_fail] + 'fail = ["case:does-not-exist"' + toml[first_fail + len("fail = ["):]
    (dst / "exam.toml").write_text(broken.replace('fail = ["case:does-not-exist""', 'fail = ["case:does-not-exist", "'))
    with pytest.raises(ExamError, match="unknown check"):
        load_exam(dst)


def test_grader_hash_covers_what_grades_and_nothing_else(tmp_path, monkeypatch):
    """The hash changes with the manifest, the exam's checks, the grading modules and
    the metrics mock; not with prompts, reference sources or the scripted LLM server."""
    import shutil

    from harness import exams as exams_mod

    src_root = exams_mod._HARNESS_DIR.parent
    for d in ("harness", "mock_server"):
        shutil.copytree(src_root / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__", "_exams"))
    exam_dir = tmp_path / "exams" / "go-basics"
    shutil.copytree(all_exams()[0].root.parent / "go-basics", exam_dir)
    monkeypatch.setattr(exams_mod, "_HARNESS_DIR", tmp_path / "harness")

    def digest() -> str:
        return load_exam(exam_dir).grader_hash

    def touch(path):
        path.write_text(path.read_text() + "\n# changed\n")

    base = digest()
    for unrelated in (tmp_path / "mock_server" / "llm.py", tmp_path / "mock_server" / "llm_handler.py",
                      tmp_path / "harness" / "report.py", next(exam_dir.glob("prompts/*")),
                      exam_dir / "README.md"):
        touch(unrelated)
        assert digest() == base, unrelated.name
    for grading in (tmp_path / "mock_server" / "metrics.py", tmp_path / "harness" / "grading.py",
                    tmp_path / "harness" / "sandbox.py", exam_dir / "exam.toml"):
        touch(grading)
        assert digest() != base, grading.name
        base = digest()
