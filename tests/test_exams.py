"""Every built-in exam proves its grader: the reference scores full marks, and each
known-bad variant (and the baseline) loses exactly the points it should, graded
with real Go builds and real runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ExamError
from harness.exams.exam import all_exams, load_exam
from harness.grade.grading import grade_source
from harness.grade.validate import Verdict, expectations, source_of

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
    from harness.grade.grading import check_names

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
    """The hash changes with the manifest, the exam's Python files (the scraper's own
    mock for that exam alone), the grading packages (by directory: a module added to
    one is covered at once) and the other modules grading imports; not with prompts,
    reference sources, the store, reports, the endpoint client or the scripted LLM
    server."""
    import shutil

    from harness.exams import exam as exams_mod

    src_root = exams_mod._HARNESS_DIR.parent
    for d in ("harness", "mock_server"):
        shutil.copytree(src_root / d, tmp_path / d, ignore=shutil.ignore_patterns("__pycache__", "_exams"))
    exam_dir = tmp_path / "exams" / "go-basics"
    scraper_dir = tmp_path / "exams" / "scraper-resilience"
    shutil.copytree(all_exams()[0].root.parent / "go-basics", exam_dir)
    shutil.copytree(all_exams()[0].root.parent / "scraper-resilience", scraper_dir)
    monkeypatch.setattr(exams_mod, "_HARNESS_DIR", tmp_path / "harness")
    h = tmp_path / "harness"

    def digest(d: Path = exam_dir) -> str:
        return load_exam(d).grader_hash

    def touch(path):
        path.write_text(path.read_text() + "\n# changed\n")

    base = digest()
    for unrelated in (tmp_path / "mock_server" / "llm.py", tmp_path / "mock_server" / "llm_handler.py",
                      h / "report" / "__init__.py", h / "report" / "render.py", h / "store" / "db.py",
                      h / "store" / "queries.py", h / "generate" / "client.py", h / "generate" / "runner.py",
                      h / "cli" / "progress.py", h / "api.py", next(exam_dir.glob("prompts/*")),
                      exam_dir / "README.md"):
        touch(unrelated)
        assert digest() == base, unrelated
    for grading in (h / "grade" / "grading.py", h / "runtime" / "sandbox.py", h / "grade" / "answers.py",
                    h / "grade" / "extract.py", h / "grade" / "regrade.py", h / "exams" / "kit" / "httpmock.py",
                    h / "errors.py", h / "results.py", exam_dir / "exam.toml"):
        touch(grading)
        assert digest() != base, grading
        base = digest()
    scraper = digest(scraper_dir)
    touch(scraper_dir / "mock.py")     # the scraper's checks drive its mock; go-basics never loads it
    assert digest(scraper_dir) != scraper and digest() == base
    # A module added to a grading package is covered by directory, imported or not.
    (h / "grade" / "newly_added.py").write_text("X = 1\n")
    assert digest() != base
    base = digest()
    # A module outside the grading packages is covered once grading starts to import it.
    (h / "newly_used.py").write_text("X = 1\n")
    assert digest() == base
    answers = h / "grade" / "answers.py"
    answers.write_text(answers.read_text().replace("from harness.grade import grading\n",
                                                   "from harness import newly_used\nfrom harness.grade import grading\n"))
    base = digest()
    touch(h / "newly_used.py")
    assert digest() != base


# Grade an answer through the grading entry point in a fresh interpreter, then list
# the modules of ours it loaded and the ones the grader hash covers.
_GRADE_AND_LIST = r"""
import json, sys
from harness.runtime import gotool
from harness.grade.answers import Answer, grade_answer
from harness.exams.exam import find_exam, grading_modules

exam = find_exam(sys.argv[1])
task = exam.tasks[0]
ref = exam.read(task.reference)
answer = "Here it is:\n```go\n" + ref + "```\n" if task.reference.endswith(".go") else ref
grade = grade_answer(exam, task, Answer(answer, None, "stop"), gotool.resolve())
print(json.dumps({
    "points": [grade.points, grade.max_points],
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("harness", "mock_server")),
    "exam_loaded": sorted(m for m in sys.modules if m.startswith("_sweep_exam_")),
    "hashed": sorted(grading_modules(list(exam.root.rglob("*.py")))),
}))
"""

# What the check driver process (`python -m harness.grade.driver`) loads: its own module,
# then, as its main() does before any check runs, the exam and its checks module.
_DRIVER_AND_LIST = r"""
import json, sys
from harness.grade import driver
from harness.exams.exam import find_exam, grading_modules
from harness.exams.package import load_checks

exam = find_exam(sys.argv[1])
checks = load_checks(exam)
print(json.dumps({
    "checks": [name for name, _ in checks.CHECKS],
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("harness", "mock_server")),
    "exam_loaded": sorted(m for m in sys.modules if m.startswith("_sweep_exam_")),
    "hashed": sorted(grading_modules(list(exam.root.rglob("*.py")))),
}))
"""


def _fresh(script: str, *args: str) -> dict:
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, cwd=root,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_grader_hash_covers_every_module_grading_loads(toolchain):
    """Grading in a fresh interpreter loads only modules the grader hash covers."""
    got = _fresh(_GRADE_AND_LIST, "go-basics")
    assert got["points"][0] == got["points"][1] > 0            # it really graded (the reference: full marks)
    assert "harness.grade.answers" in got["loaded"] and "harness.grade.extract" in got["loaded"]
    assert set(got["loaded"]) <= set(got["hashed"]), set(got["loaded"]) - set(got["hashed"])


def test_grader_hash_covers_every_module_the_check_driver_loads():
    got = _fresh(_DRIVER_AND_LIST, "scraper-resilience")
    assert len(got["checks"]) == 10 and any(m.endswith(".mock") for m in got["exam_loaded"])
    assert set(got["loaded"]) <= set(got["hashed"]), set(got["loaded"]) - set(got["hashed"])
