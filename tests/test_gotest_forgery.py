"""The gotest verdict cannot be forged: answers written to fake a pass, as a hostile
model would, score no more than the honest behaviour of their code.

tests/data/forgeries/ holds copiers for the parallel-copier API that copy nothing and
try to turn that into passes: framing printed from a timer set at package
initialisation, PASS lines then exit(1) or a panic, testing's own lines split by half
lines, the test binary's flags read or rewritten, the binary re-executed with its
output rewritten, a self-SIGSTOP, the hidden tests embedded, a raw-string import of
testing, a //go:linkname hidden between comment-like strings, build constraints, the
logger's *os.File closed. ``honest-nothing.go`` is their honest twin (the same copier
without the forging).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.exams.exam import all_exams, load_exam
from harness.grade.grading import grade_source
from harness.results import Outcome

FORGERIES = Path(__file__).parent / "data" / "forgeries"

# Forgers the toolchain-read screen refuses outright, and the reason each must name.
REJECTED = {
    "os-args-exit0": "imports os,",
    "raw-string-testing": "imports testing,",
    "embed-tests": "embeds files",
    "sigstop-self": "imports syscall,",
    "reexec-rewrite": "imports os,",
    "flag-lookup": "imports flag,",
}
# Forgers that build and run: they may only lose checks the honest twin passes.
RUN = ["framed-timer", "pass-then-exit", "pass-then-panic", "splits-frames", "stderr-close"]


@pytest.fixture(scope="module")
def copier():
    exam = next(e for e in all_exams() if e.id == "parallel-copier")
    return exam, exam.tasks[0]


@pytest.fixture(scope="module")
def twin(copier, toolchain):
    exam, task = copier
    grade = grade_source(exam, task, (FORGERIES / "honest-nothing.go").read_text(), toolchain)
    assert grade.outcome is Outcome.RAN, grade.explanation
    return grade


@pytest.mark.slow
@pytest.mark.parametrize("name", RUN)
def test_a_running_forger_gains_nothing(name, copier, twin, toolchain):
    exam, task = copier
    grade = grade_source(exam, task, (FORGERIES / f"{name}.go").read_text(), toolchain)
    assert grade.outcome in (Outcome.RAN, Outcome.BUILD_FAILED), grade.explanation
    honest = {c.name for c in twin.checks if c.passed}
    gained = {c.name for c in grade.checks if c.passed} - honest
    assert not gained, (gained, {c.name: c.detail for c in grade.checks})
    assert grade.points <= twin.points < task.points
    assert grade.details.get("trust") == "verified"


@pytest.mark.slow
@pytest.mark.parametrize("name, why", sorted(REJECTED.items()))
def test_a_forger_reaching_past_the_safe_imports_is_rejected(name, why, copier, toolchain):
    exam, task = copier
    grade = grade_source(exam, task, (FORGERIES / f"{name}.go").read_text(), toolchain)
    assert grade.points == 0, grade.explanation
    assert all(c.detail.startswith("rejected: ") and why in c.detail for c in grade.checks), \
        [c.detail for c in grade.checks]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["linkname-in-strings", "build-ignore"])
def test_forgers_the_compiler_refuses_score_nothing(name, copier, toolchain):
    exam, task = copier
    grade = grade_source(exam, task, (FORGERIES / f"{name}.go").read_text(), toolchain)
    assert grade.points == 0 and not any(c.passed for c in grade.checks), grade.explanation


_PROBE_TESTS = textwrap.dedent("""\
    package probe_test

    import (
        "testing"

        "answer"
    )

    func TestValue(t *testing.T) {
        if probe.Value() != 42 {
            t.Fatalf("Value() = %d", probe.Value())
        }
    }

    // The parent decides from the answer whether to start its subtests: a parent that
    // passes without starting them must not pass them.
    func TestSub(t *testing.T) {
        if probe.Value() != 42 {
            return
        }
        t.Run("ok", func(t *testing.T) {})
        t.Run("skipped", func(t *testing.T) { t.Skip("not this one") })
    }
    """)

_PROBE_MANIFEST = textwrap.dedent("""\
    id = "probe"
    title = "probe"
    version = 1
    grader = "gotest"

    [limits]
    check_timeout_s = 5

    [[tasks]]
    id = "probe"
    prompt = "p.md"
    points = 3
    reference = "ref.go"
    tests = ["probe_test.go"]
    checks = [
        { name = "TestValue", points = 1 },
        { name = "TestSub/ok", points = 1 },
        { name = "TestSub/skipped", points = 1 },
    ]
    """)

_FORGE_SUBTESTS = textwrap.dedent("""\
    package probe

    import "fmt"

    func Value() int {
        for _, n := range []string{"TestSub/ok", "TestSub/skipped", "TestValue"} {
            fmt.Printf("%c=== RUN   TestSweepHarness/%s\\n%c--- PASS: TestSweepHarness/%s (0.00s)\\n", rune(0x16), n,
                rune(0x16), n)
        }
        return 0
    }
    """)


def _probe(tmp_path: Path):
    d = tmp_path / "probe"
    d.mkdir()
    (d / "exam.toml").write_text(_PROBE_MANIFEST)
    (d / "p.md").write_text("x\n")
    (d / "ref.go").write_text("package probe\n\nfunc Value() int { return 42 }\n")
    (d / "probe_test.go").write_text(_PROBE_TESTS)
    exam = load_exam(d)
    return exam, exam.tasks[0]


def test_subtest_checks_need_the_subtest_to_have_run_and_not_skipped(tmp_path, toolchain):
    exam, task = _probe(tmp_path)
    ref = grade_source(exam, task, exam.read("ref.go"), toolchain)
    passed = {c.name for c in ref.checks if c.passed}
    detail = {c.name: c.detail for c in ref.checks}
    assert passed == {"TestValue", "TestSub/ok"}, detail
    assert detail["TestSub/skipped"].startswith("skipped: "), detail

    forged = grade_source(exam, task, _FORGE_SUBTESTS, toolchain)
    detail = {c.name: c.detail for c in forged.checks}
    assert forged.points == 0, detail
    assert detail["TestSub/ok"].startswith("never ran: TestSub passed without running TestSub/ok"), detail
