"""Issue 22, item 2, "whose fault, proved": a run killed at our wall limit is measured
(CPU time, time waiting for a CPU, stopped processes) and an answer that stops itself
or sleeps fails by its own doing, never as a grading error; every process we start
gets default signal dispositions and an empty mask, however `sweep` was started.
Real processes, real Go builds, real `sweep` subprocesses."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.grade.grading import grade_source
from harness.results import CheckStatus, Outcome
from harness.runtime import proc
from tests.helpers import make_tiny_exam, write_checks_exam

PY = sys.executable
ENV = proc.minimal_env()
ROOT = Path(__file__).resolve().parent.parent


# -- the measurement and the rule ------------------------------------------------------

def _overrun(code: str, wall_s: float = 1.5) -> proc.ProcResult:
    r = proc.run([PY, "-c", code], env=ENV, limits=proc.Limits(wall_s=wall_s))
    assert r.timed_out and r.cpu_s is not None and r.runnable_s is not None
    return r


def test_a_sleeping_run_was_waiting_not_working():
    r = _overrun("import time; time.sleep(60)")
    assert not r.stopped and r.cpu_s < 0.25 * r.wall_s
    why = r.overrun_is_programs()
    assert why is not None and why.endswith("it was waiting, not working") and "s of CPU in" in why
    assert r.overrun_is_programs(own_limit=True) == why


def test_a_run_that_stops_itself_is_its_own_doing():
    r = _overrun("import os, signal; os.kill(os.getpid(), signal.SIGSTOP)")
    assert r.stopped
    assert r.overrun_is_programs() == "stopped itself (SIGSTOP)"


def test_a_stopped_child_anywhere_in_the_tree_counts():
    # the child leaves the process group (setsid): the tree is followed by parent pid
    r = _overrun("import os, signal, subprocess, sys\n"
                 "subprocess.run([sys.executable, '-c', 'import os, signal; os.setsid(); "
                 "os.kill(os.getpid(), signal.SIGSTOP)'])")
    assert r.stopped and r.overrun_is_programs() == "stopped itself (SIGSTOP)"


def test_a_working_run_is_ours_unless_the_limit_is_its_own():
    r = _overrun("while True: pass")
    assert r.cpu_s >= 0.25 * r.wall_s and not r.stopped
    assert r.overrun_is_programs() is None                      # e.g. a driver: the machine was too slow
    own = r.overrun_is_programs(own_limit=True)                 # e.g. a stdio case: its time limit
    assert own is not None and "working past its time limit" in own
    assert "s of CPU in" in r.describe_overrun()


def test_cpu_of_reaped_children_counts():
    r = _overrun("import subprocess, sys, time\n"
                 "subprocess.run([sys.executable, '-c', 'import time\\nwhile time.process_time() < 2.5: pass'])\n"
                 "time.sleep(60)", wall_s=6)
    # the child's 2.5 s of CPU, reaped before the kill (or still running, if the machine
    # was slow): a working run either way
    assert r.overrun_is_programs() is None


@pytest.mark.parametrize("cpu, runnable, own, programs", [
    (0.1, 9.0, False, False),     # starved: runnable nearly all the time, no CPU given: ours
    (0.1, 9.0, True, False),      # the same under a time limit of its own: still ours
    (0.1, 1.0, False, True),      # asleep
    (3.0, 0.0, False, False),     # working, in a run that ends by itself: ours
    (3.0, 0.0, True, True),       # working past its own time limit
])
def test_the_rule(cpu, runnable, own, programs):
    r = proc.ProcResult(("x",), None, b"", b"", 10.0, timed_out=True, cpu_s=cpu, runnable_s=runnable)
    assert (r.overrun_is_programs(own_limit=own) is not None) is programs


def test_nothing_to_say_about_a_run_that_was_not_killed_at_the_limit():
    r = proc.run([PY, "-c", "pass"], env=ENV)
    assert r.cpu_s is None and r.overrun_is_programs() is None and r.overrun_is_programs(own_limit=True) is None


# -- the graders ------------------------------------------------------------------------

STOPPING_GO = textwrap.dedent("""\
    package main

    import (
    \t"fmt"
    \t"syscall"
    )

    func main() {
    \tsyscall.Kill(syscall.Getpid(), syscall.SIGSTOP)
    \tfmt.Println("hello, world")
    }
""")

SLEEPING_GO = textwrap.dedent("""\
    package main

    import (
    \t"fmt"
    \t"time"
    )

    func main() {
    \ttime.Sleep(time.Hour)
    \tfmt.Println("hello, world")
    }
""")


@pytest.mark.parametrize("source, why", [(STOPPING_GO, "stopped itself (SIGSTOP)"),
                                         (SLEEPING_GO, "it was waiting, not working")])
def test_stdio_an_answer_that_stops_or_sleeps_fails_its_own_checks(tmp_path, toolchain, isolation, source, why):
    exam = make_tiny_exam(tmp_path / "exams")
    g = grade_source(exam, exam.task("hello"), source, toolchain)
    assert g.outcome is Outcome.RAN, g.explanation
    by = {c.name: c for c in g.checks}
    assert by["build"].passed
    for name in ("runs", "case:plain"):
        assert by[name].status is CheckStatus.FAIL
        assert "did not finish within" in by[name].detail and why in by[name].detail, by[name].detail


# A checks exam whose driver waits on the program past the driver's own wall limit:
# the program under test stops itself (a child of it, since the program is pid 1 of
# its sandbox under bwrap and pid 1 ignores its own SIGSTOP) or sleeps.
_WAITING_CHECKS = textwrap.dedent("""\
    from harness.exams.checkkit import CheckResult

    CHECKS = [("prints", 1.0), ("second", 1.0)]

    def run_checks(ctx):
        first = ctx.run([], limits=ctx.limits.__class__(wall_s=600, output_bytes=4096))
        ok = first.returncode == 0 and "hello" in first.stdout_text()
        return [CheckResult.passing("prints", 1.0) if ok else CheckResult.failing("prints", 1.0, "no"),
                CheckResult.passing("second", 1.0)]
""")

STOPPING_CHILD_GO = textwrap.dedent("""\
    package main

    import (
    \t"fmt"
    \t"os"
    \t"os/exec"
    \t"syscall"
    )

    func main() {
    \tif len(os.Args) > 1 {
    \t\tsyscall.Kill(syscall.Getpid(), syscall.SIGSTOP)
    \t\treturn
    \t}
    \texec.Command(os.Args[0], "child").Run()
    \tfmt.Println("hello, world")
    }
""")


@pytest.mark.parametrize("source, why", [(STOPPING_CHILD_GO, "stopped itself (SIGSTOP)"),
                                         (SLEEPING_GO, "it was waiting, not working")])
def test_checks_a_driver_overrun_by_a_stopped_or_sleeping_program_is_the_programs(tmp_path, toolchain, isolation,
                                                                                  source, why):
    from harness.exams.exam import load_exam

    d = write_checks_exam(tmp_path / "exams", exam_id="waits", checks_py=_WAITING_CHECKS,
                          checks={"prints": 1.0, "second": 1.0}, limits="check_timeout_s = 4")
    exam = load_exam(d)
    g = grade_source(exam, exam.tasks[0], source, toolchain)
    assert g.outcome is Outcome.RAN, g.explanation
    assert g.points == 0
    for c in g.checks:
        assert c.status is CheckStatus.FAIL
        assert "the check driver ran past its" in c.detail and why in c.detail, c.detail


# -- signals ----------------------------------------------------------------------------

SIGNALS_GO = textwrap.dedent("""\
    package main

    import (
    \t"fmt"
    \t"os"
    \t"strings"
    )

    func main() {
    \tdata, _ := os.ReadFile("/proc/self/status")
    \tfor _, line := range strings.Split(string(data), "\\n") {
    \t\tif strings.HasPrefix(line, "SigIgn:") || strings.HasPrefix(line, "SigBlk:") {
    \t\t\tfmt.Println(strings.Join(strings.Fields(line), " "))
    \t\t}
    \t}
    }
""")
DEFAULT_SIGNALS = "SigBlk: 0000000000000000\nSigIgn: 0000000000000000\n"


def _ignore_int_and_quit() -> None:
    """What dash does to a background job (``sweep run &``): SIGINT and SIGQUIT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


def test_the_setup_is_real_ignored_signals_reach_a_go_program_started_plainly(tmp_path, toolchain):
    """Without our reset, a Go program started by a process that ignores SIGINT and
    SIGQUIT starts with SIGINT ignored (SigIgn 0x2: the Go runtime keeps SIGHUP and
    SIGINT ignored when they were, and takes SIGQUIT over): the test below can fail."""
    b = toolchain.build(SIGNALS_GO, tmp_path / "b")
    assert b.ok and b.binary is not None
    out = subprocess.run([str(b.binary)], capture_output=True, text=True, timeout=60,
                         preexec_fn=_ignore_int_and_quit).stdout
    assert "SigIgn: 0000000000000002" in out


@pytest.mark.parametrize("ignored", [False, True])
def test_a_graded_program_gets_default_signals_however_sweep_was_started(tmp_path, ignored):
    exam = make_tiny_exam(tmp_path / "exams", expect=DEFAULT_SIGNALS)
    answer = tmp_path / "answer.go"
    answer.write_text(SIGNALS_GO)
    r = subprocess.run([PY, str(ROOT / "sweep.py"), "grade", str(answer), "--exam", str(exam.root), "--task", "hello"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT,
                       preexec_fn=_ignore_int_and_quit if ignored else None)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3/3 (ran;" in r.stdout, r.stdout


# -- a grading error is retried once ------------------------------------------------------

def _flaky(failures: int, calls: list[str]):
    """``grade_attempt`` whose first ``failures`` calls end in a grading error (a
    machine too slow a moment: the one boundary faked here), the rest grade for real."""
    from harness.grade import regrade
    from harness.results import CheckResult, Grade

    real = regrade.grade_attempt

    def grade(exam, task, attempt, toolchain):
        calls.append(attempt.key.label())
        if len(calls) <= failures:
            checks = tuple(CheckResult(n, CheckStatus.ERROR, 0.0, p, "the machine was too slow")
                           for n, p in task.declared_checks(exam.manifest.grader))
            return Grade(Outcome.GRADING_ERROR, 0.0, task.points, checks, "grading error: the machine was too slow",
                         exam.grader_hash)
        return real(exam, task, attempt, toolchain)

    return grade


def _current(out: Path):
    from harness.store import queries
    from harness.store.db import open_existing

    st = open_existing(out)
    try:
        return queries.attempts(st), st.query("SELECT outcome FROM grades ORDER BY id")
    finally:
        st.close()


@pytest.mark.parametrize("failures", [1, 2])
def test_a_grading_error_is_retried_once_at_the_end_of_the_sweep(tmp_path, toolchain, monkeypatch, failures):
    from harness.generate import runner
    from harness.grade import regrade
    from mock_server.llm import Reply, ScriptedLLM, scripted_fence
    from tests.helpers import HELLO_GO, run_sweep

    exam = make_tiny_exam(tmp_path / "exams")
    calls: list[str] = []
    flaky = _flaky(failures, calls)
    monkeypatch.setattr(runner, "grade_attempt", flaky)
    monkeypatch.setattr(regrade, "grade_attempt", flaky)
    events: list = []
    with ScriptedLLM({"m": Reply(scripted_fence(HELLO_GO))}) as llm:
        s = run_sweep(llm.url, tmp_path / "out", exam, toolchain, seeds=(1,), events=events)
    assert len(calls) == 2                      # graded, then retried once: never a third time
    assert s.retried == 1
    assert any("retrying each once" in e.message for e in events)
    atts, stored = _current(tmp_path / "out")
    # the retry takes the error's place (one grade per answer and grader), recording it
    assert [r["outcome"] for r in stored] == ["ran" if failures == 1 else "grading_error"]
    g = atts[0].grade
    assert g is not None and g.details["retry"]["attempt"] == 2
    if failures == 1:
        assert s.outcomes == {"ran": 1}
        assert g.outcome == "ran" and g.points == 3
        assert "[graded twice: the first grading failed (the machine was too slow)]" in g.explanation
    else:
        assert s.outcomes == {"grading_error": 1}
        assert g.outcome == "grading_error" and "both gradings failed" in g.explanation
        # `sweep regrade` grades a stored grading error again
        monkeypatch.setattr(regrade, "grade_attempt", _flaky(0, []))
        from harness.store.db import Store

        st = Store(tmp_path / "out")
        try:
            regrade.regrade_store(st, toolchain, exams={(exam.id, exam.version): exam})
        finally:
            st.close()
        atts, stored = _current(tmp_path / "out")
        assert [r["outcome"] for r in stored] == ["ran"]
        g = atts[0].grade
        assert g is not None and g.outcome == "ran" and g.points == 3 and "graded twice" in g.explanation
