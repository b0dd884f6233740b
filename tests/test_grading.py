"""The grading path around the check driver, with a tiny "checks" exam (one real Go
build, one driver run): what the driver sees of the grader's environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.exams.exam import Exam, load_exam
from harness.grade.grading import grade_source
from harness.results import Outcome
from tests.helpers import HELLO_GO, write_checks_exam

CHECKS_PY = '''
import os

from harness.exams.checkkit import CheckResult

CHECKS = [("runs", 1.0)]


def run_checks(ctx):
    ctx.notes["env"] = {k: os.environ.get(k) for k in ("SWEEP_CHECK_TIME_SCALE", "SWEEP_API_KEY")}
    ctx.notes["run_wall_s"] = ctx.limits.wall_s
    res = ctx.run([])
    if res.ok and res.stdout_text() == "hello, world\\n":
        return [CheckResult.passing("runs", 1.0)]
    return [CheckResult.failing("runs", 1.0, res.describe_exit())]
'''


def make_checks_exam(root: Path) -> Exam:
    return load_exam(write_checks_exam(root, exam_id="tiny-checks", checks_py=CHECKS_PY, checks={"runs": 1}))


@pytest.fixture
def exam(tmp_path):
    return make_checks_exam(tmp_path / "exams")


def test_time_scale_reaches_the_check_driver_and_nothing_else(exam, toolchain, monkeypatch):
    monkeypatch.setenv("SWEEP_CHECK_TIME_SCALE", "2.5")
    monkeypatch.setenv("SWEEP_API_KEY", "secret")
    g = grade_source(exam, exam.tasks[0], HELLO_GO, toolchain)
    assert g.outcome is Outcome.RAN and g.points == 1, g.explanation
    assert g.details["env"] == {"SWEEP_CHECK_TIME_SCALE": "2.5", "SWEEP_API_KEY": None}
    assert g.details["check_time_scale"] == 2.5
    # the limit around each program run stretches with the deadlines inside it
    assert g.details["run_wall_s"] == pytest.approx(2.5 * exam.manifest.limits.run_timeout_s)


def test_time_scale_unset_is_not_passed(exam, toolchain, monkeypatch):
    monkeypatch.delenv("SWEEP_CHECK_TIME_SCALE", raising=False)
    g = grade_source(exam, exam.tasks[0], HELLO_GO, toolchain)
    assert g.points == 1 and g.details["env"]["SWEEP_CHECK_TIME_SCALE"] is None
    assert "check_time_scale" not in g.details
    assert g.details["run_wall_s"] == exam.manifest.limits.run_timeout_s


@pytest.mark.parametrize("value", ["fast", "0", "-1", "nan"])
def test_a_bad_time_scale_is_a_grading_error_not_a_failure(exam, toolchain, monkeypatch, value):
    monkeypatch.setenv("SWEEP_CHECK_TIME_SCALE", value)
    g = grade_source(exam, exam.tasks[0], HELLO_GO, toolchain)
    assert g.outcome is Outcome.GRADING_ERROR
    assert "SWEEP_CHECK_TIME_SCALE" in g.explanation and "not a positive number" in g.explanation


def test_a_relative_exam_path_reaches_the_check_driver(exam, toolchain, monkeypatch):
    monkeypatch.chdir(exam.root.parent)
    rel = load_exam(Path(exam.root.name))
    assert not rel.root.is_absolute()
    g = grade_source(rel, rel.tasks[0], HELLO_GO, toolchain)
    assert g.outcome is Outcome.RAN and g.points == 1, g.explanation
