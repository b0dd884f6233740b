"""The gotest grader: screening, the test2json framing, classification of every way a
test binary can end (real builds and runs), and the exam skeletons of every kind."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.scaffold import KINDS, new_exam
from harness.exams.exam import load_exam
from harness.grade.gotest import SAFE_IMPORTS, parse_test2json, screen_listing
from harness.results import Outcome
from harness.grade.grading import grade_source
from harness.grade.validate import validate_exam

M = "\x16"


def test_framing_needs_the_marker():
    out = (f"{M}=== RUN   TestA\n"
           "--- PASS: TestB (0.00s)\n"                 # printed by the program: no marker, not framing
           f"{M}=== RUN   TestA/sub\n"
           "\x0f    a_test.go:3: boom\x0e\n"
           f"{M}--- FAIL: TestA/sub (0.00s)\n"
           f"{M}=== NAME  TestA\n"
           f"{M}--- FAIL: TestA (0.01s)\n"
           f"{M}=== RUN   TestC\n"
           "panic: boom\n")
    ev = parse_test2json(out)
    assert list(ev.tests) == ["TestA", "TestA/sub", "TestC"]
    assert ev.tests["TestA/sub"].action == "fail" and "a_test.go:3: boom" in ev.tests["TestA/sub"].output[0]
    assert ev.tests["TestC"].action == "run" and ev.running() == ["TestC"]
    assert "TestB" not in ev.tests and ev.tail == ["panic: boom"]


@pytest.mark.parametrize("source, why", [
    ("package counter\nfunc F() {}\n", None),
    ("// import \"os\" in a comment\npackage counter\n", None),
    ("package counter\nimport (\n\t\"fmt\"\n\t\"sync\"\n)\nvar _ = fmt.Sprint\nvar _ sync.Mutex\n", None),
    ("package main\nfunc main() {}\n", "package main; the task's API is package counter"),
    ("package counter\nimport \"testing\"\nvar _ = testing.Short\n", "imports testing,"),
    ("package counter\nimport (\n\t\"fmt\"\n\tu `unsafe`\n)\n", "imports unsafe,"),
    ("package counter\nimport x `runtime/debug`\n", "imports runtime/debug,"),
    ("package counter\nimport _ \"embed\"\n//go:embed *.go\nvar s string\n", "embeds files (//go:embed *.go)"),
    ("//go:build ignore\n\npackage counter\n", "build constraints exclude answer.go"),
    ("package counter\n// int f(void) { return 1; }\nimport \"C\"\n", "uses cgo"),
])
def test_screening_reads_the_answer_with_the_toolchain(source, why, tmp_path, toolchain):
    listing, log = toolchain.list_package({"answer.go": source}, tmp_path / "list")
    assert listing is not None, log
    got = screen_listing(listing, "counter", ["answer.go"], SAFE_IMPORTS)
    assert (got is None) if why is None else (why in (got or "")), got


_TESTS = textwrap.dedent("""\
    package probe

    import (
        "fmt"
        "testing"
        "time"
    )

    func TestOK(t *testing.T) {
        fmt.Println("--- PASS: TestHang (0.00s)") // forged framing must not count
        if Value() != 1 {
            t.Fatalf("Value() = %d", Value())
        }
    }

    func TestSub(t *testing.T) {
        t.Run("good", func(t *testing.T) {})
        t.Run("bad", func(t *testing.T) { t.Errorf("wanted %d", 2) })
        t.Run("skipped", func(t *testing.T) { t.Skip("not here") })
    }

    func TestPanics(t *testing.T) {
        var m map[string]int
        m["x"] = Value()
    }

    func TestAfterPanic(t *testing.T) {}

    func TestHang(t *testing.T) {
        time.Sleep(time.Hour)
    }

    func TestAfterHang(t *testing.T) {}
    """)

_MANIFEST = textwrap.dedent("""\
    id = "probe"
    title = "probe"
    version = 1
    grader = "gotest"

    [limits]
    check_timeout_s = 3

    [[tasks]]
    id = "probe"
    prompt = "p.md"
    points = 8
    reference = "ref.go"
    tests = ["probe_test.go"]
    checks = [
        { name = "TestOK", points = 1 },
        { name = "TestSub/good", points = 1 },
        { name = "TestSub/bad", points = 1 },
        { name = "TestSub/skipped", points = 1 },
        { name = "TestPanics", points = 1 },
        { name = "TestAfterPanic", points = 1 },
        { name = "TestHang", points = 1 },
        { name = "TestAfterHang", points = 1 },
    ]
    """)


def test_every_ending_is_classified(tmp_path, toolchain):
    """Each top-level test runs in a process of its own: one panics, one hangs past
    -test.timeout; each test gets its own classification and the others still pass."""
    d = tmp_path / "probe"
    d.mkdir()
    (d / "exam.toml").write_text(_MANIFEST)
    (d / "p.md").write_text("x\n")
    (d / "ref.go").write_text("package probe\n\nfunc Value() int { return 1 }\n")
    (d / "probe_test.go").write_text(_TESTS)
    exam = load_exam(d)
    grade = grade_source(exam, exam.tasks[0], exam.read("ref.go"), toolchain)
    detail = {c.name: c.detail for c in grade.checks}
    passed = {c.name for c in grade.checks if c.passed}
    assert passed == {"TestOK", "TestSub/good", "TestAfterPanic", "TestAfterHang"}, detail
    assert detail["TestSub/bad"].startswith("failed: ") and "wanted 2" in detail["TestSub/bad"]
    assert detail["TestSub/skipped"].startswith("skipped: ")
    assert detail["TestPanics"].startswith("panic: assignment to entry in nil map")
    assert detail["TestHang"].startswith("timeout: ")
    assert grade.details["test_runs"] == 8 and len(grade.details["crashes"]) == 2   # one run per check
    assert grade.points == 4 and grade.max_points == 8

    # An answer that does not compile with the tests is the answer's build failure.
    bad = grade_source(exam, exam.tasks[0], "package probe\n\nfunc Value() string { return \"\" }\n", toolchain)
    assert bad.outcome is Outcome.BUILD_FAILED and bad.points == 0
    assert bad.explanation.startswith("build failed: the exam's tests do not compile with the answer: ")
    assert all(c.detail.startswith("build: ") for c in bad.checks) and "build_log" in bad.details
    # One that tries to bring its own tests is rejected before anything is compiled.
    sneaky = "package probe\n\nimport \"testing\"\n\nfunc Value() int { return 1 }\n\nvar _ = testing.Short\n"
    rej = grade_source(exam, exam.tasks[0], sneaky, toolchain)
    assert rej.points == 0 and all(c.detail.startswith("rejected: imports testing") for c in rej.checks)


@pytest.mark.parametrize("kind", KINDS)
def test_skeletons_validate_as_written(kind, tmp_path, toolchain):
    root = new_exam(f"my-{kind}", kind, tmp_path)
    exam = load_exam(root)
    verdicts = validate_exam(exam, toolchain)
    assert len(verdicts) == 2 and all(v.ok for v in verdicts), [v.describe() for v in verdicts]


def test_cli_new_show_and_grade_build_error(tmp_path: Path, toolchain):
    import sweep

    runner = CliRunner()
    r = runner.invoke(sweep.cli, ["exams", "new", "demo", "--grader", "stdio", "--dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(sweep.cli, ["exams", "new", "demo", "--grader", "stdio", "--dir", str(tmp_path)])
    assert r.exit_code != 0 and "already exists" in str(r.exception)
    r = runner.invoke(sweep.cli, ["exams", "show", str(tmp_path / "demo")])
    assert r.exit_code == 0 and "--- demo/sum [user] ---" in r.output and "prints their sum" in r.output
    broken = tmp_path / "broken.go"
    broken.write_text("package main\n\nfunc main() {\n\tundefinedThing()\n}\n")
    r = runner.invoke(sweep.cli, ["grade", str(broken), "--exam", str(tmp_path / "demo"), "--task", "sum"])
    assert "the build said:" in r.output and "undefined: undefinedThing" in r.output, r.output


@pytest.mark.parametrize("extra, why", [
    ("func TestMain(m *testing.M) { m.Run() }\n", "declare TestMain, a name the gotest grader reserves"),
    ("func sweepHarnessHelper() {}\n", "declare sweepHarnessHelper"),
    ("", "check 'TestMissing' names no test"),
])
def test_preflight_refuses_reserved_names_and_checks_without_a_test(extra, why, tmp_path):
    from harness.errors import ExamError
    from harness.grade.gotest import GotestGrader

    d = tmp_path / "probe"
    d.mkdir()
    manifest = _MANIFEST
    if not extra:
        manifest = manifest.replace('{ name = "TestAfterHang", points = 1 },',
                                    '{ name = "TestAfterHang", points = 1 },\n    { name = "TestMissing", points = 1 },')
        manifest = manifest.replace("points = 8", "points = 9")
    (d / "exam.toml").write_text(manifest)
    (d / "p.md").write_text("x\n")
    (d / "ref.go").write_text("package probe\n\nfunc Value() int { return 1 }\n")
    (d / "probe_test.go").write_text(_TESTS + extra)
    with pytest.raises(ExamError, match=why):
        GotestGrader().preflight(load_exam(d))
