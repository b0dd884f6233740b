"""The ``gotest`` grader: the exam's Go tests, compiled into the answer's package.

The task lists its ``*_test.go`` files (``tests = [...]`` in exam.toml) and its
checks (``[[tasks.checks]]``): each check is a test or subtest name (``TestCancel``,
``TestPool/zero-workers``) with its points. Grading:

1. **Screen the answer.** It is one file, written as ``answer.go`` (never a
   ``_test.go`` name). It must declare the tests' package, and may not declare
   ``Test``/``Benchmark``/``Fuzz``/``Example`` functions or ``TestMain``, import
   ``testing`` or ``unsafe``, or use ``//go:linkname``: those are the ways code in
   the test's own process could replace, skip or rewrite the exam's tests. An answer
   that does fails every check, with the reason.
2. **Compile the test binary** (``go test -c``, with ``-race`` when the task sets
   ``race = true``) in a fresh directory holding only ``go.mod``, ``answer.go`` and
   the exam's test files, with the toolchain's offline environment, inside the
   sandbox as the build role. Tests that do not compile with the answer (a missing
   or different API, a name clash with the tests) fail every check: ``build``.
3. **Run the binary once per top-level test** (its subtests share that run), one
   after the other, each as the run role in a sandbox of its own, in the grading's
   cgroup, with ``-test.v=test2json`` (the testing package marks its framing lines
   with a byte programs do not print by accident), ``-test.paniconexit0`` and
   ``-test.timeout`` set to the exam's ``check_timeout_s`` (times
   ``SWEEP_CHECK_TIME_SCALE``). The framing is converted into test events here. A
   process per test keeps the tests independent: a panic, a hang, a leaked
   goroutine or a data race in one cannot touch another (the race detector reports
   each racy pair of statements once per process, so in one shared process a race
   would fail whichever test happened to hit it first).
4. **Classify.** A check passes when its test (or subtest) passed. Otherwise its
   detail starts with one of: ``failed`` (the test's first error line), ``race``
   (the race detector reported during the test), ``panic`` (the binary panicked or
   hit a fatal error in that test), ``timeout`` (Go's ``-test.timeout`` fired while
   it ran), ``crash`` (the binary exited during it: ``os.Exit``, a signal, too much
   output), ``skipped``, ``never ran`` or ``build``. Tests that never ran (a listed
   subtest its parent did not start; every test when the binary dies before any
   test starts) are failures: the denominator is fixed.

Whose fault: the binary killed by *our* wall limit (``check_timeout_s`` plus
``WALL_MARGIN_S``, so Go's own ``-test.timeout`` always fires first in a process
that is running at all) means the machine was too slow or stopped us: a grading
error, never the model's. So is a test build
past ``build_timeout_s`` when the answer alone built. What happens while the
grading's memory or process limit is exhausted is the answer's doing
(``harness.grade.grading``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

from harness.errors import ExamError, GradingError
from harness.exams.exam import Exam, Task
from harness.grade.checks import _passed_to_checks, _time_scale
from harness.grade.graders import GradingRun, run_limits
from harness.results import CheckResult
from harness.runtime import proc, sandbox
from harness.runtime.gotool import BuildStatus, Toolchain, first_lines

ANSWER_FILE = "answer.go"
MARKER = "\x16"             # testing's -test.v=test2json framing marker
ERR_START, ERR_END = "\x0f", "\x0e"   # around t.Error output in that mode
WALL_MARGIN_S = 15.0        # our wall limit: Go's -test.timeout plus this
RACE_ADDRESS_SPACE_MB = 4096   # a -race binary's floor: ThreadSanitizer reserves address space up front

_FRAME = re.compile(r"^(?:=== (RUN|PAUSE|CONT|NAME)\s+(\S*)|--- (PASS|FAIL|SKIP): (\S+) \(([\d.]+)s\))")
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_]\w*)", re.M)
_FORBIDDEN: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\s*func\s+((?:Test|Benchmark|Fuzz|Example)\w*)\s*[\[(]", re.M),
     "declares {0}, a test function: only the exam's tests run"),
    (re.compile(r'^\s*(?:import\s+)?(?:[\w.]+\s+)?"(testing|unsafe)(?:/[\w/]*)?"', re.M),
     "imports {0}, which a gotest answer may not (it could rewrite the exam's tests)"),
    (re.compile(r"//go:(linkname)\b"), "uses //go:{0}, which a gotest answer may not"),
)


def _strip_comments(src: str) -> str:
    """The source without /* */ comments and // comment tails (rough: strings are
    not parsed), for the screening patterns; //go: directives are kept."""
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r"//(?!go:).*", "", src)


def screen_answer(source: str, package: str) -> str | None:
    """Why the answer may not be compiled with the exam's tests, or None."""
    code = _strip_comments(source)
    m = _PACKAGE.search(code)
    if m is None:
        return "the answer has no package clause"
    if m.group(1) != package:
        return f"the answer is package {m.group(1)}; the task's API is package {package}"
    for pattern, why in _FORBIDDEN:
        hit = pattern.search(code)
        if hit:
            return why.format(hit.group(1))
    return None


def test_package(exam: Exam, task: Task) -> str:
    """The package clause the exam's test files share."""
    names = set()
    for rel in task.tests:
        m = _PACKAGE.search(_strip_comments(exam.read(rel)))
        if m is None:
            raise GradingError(f"{rel} has no package clause")
        names.add(m.group(1))
    if len(names) != 1:
        raise GradingError(f"the task's test files declare different packages: {', '.join(sorted(names))}")
    return names.pop()


# -- the test2json framing, converted ------------------------------------------
@dataclass
class TestState:
    action: str = "run"               # run, pass, fail, skip
    output: list[str] = field(default_factory=list)


@dataclass
class Events:
    tests: dict[str, TestState] = field(default_factory=dict)   # in start order
    tail: list[str] = field(default_factory=list)               # output after the last framing line
    # Tests that failed since the last test started: a panicking test is reported
    # failed (it and its parents) just before the panic is printed.
    final_fails: list[str] = field(default_factory=list)

    def running(self) -> list[str]:
        return [n for n, s in self.tests.items() if s.action == "run"]


def parse_test2json(stdout: str) -> Events:
    """Events from a test binary's ``-test.v=test2json`` standard output: which
    tests started and how each ended, and each test's output lines. Only lines
    that carry the framing marker count as framing."""
    ev = Events()
    current: str | None = None
    for raw in stdout.splitlines():
        framed = raw.startswith(MARKER)
        line = raw[1:] if framed else raw
        m = _FRAME.match(line) if framed else None
        if m is None:
            if current is not None and current in ev.tests:
                ev.tests[current].output.append(line)
            ev.tail.append(line)
            continue
        ev.tail = []
        verb, name = m.group(1), m.group(2)
        if verb is not None:
            if verb == "RUN":
                ev.tests[name] = TestState()
                ev.final_fails = []
            current = name or None
            continue
        result, name = m.group(3), m.group(4)
        st = ev.tests.setdefault(name, TestState())
        st.action = result.lower()
        ev.final_fails = [*ev.final_fails, name] if st.action == "fail" else []
        current = name
    return ev


def _first_error(lines: list[str]) -> str:
    for ln in lines:
        text = ln.replace(ERR_START, "").replace(ERR_END, "").strip()
        if text and (ERR_START in ln or re.match(r"^\S+\.go:\d+:", text)):
            return text[:300]
    texts = [ln.strip() for ln in lines if ln.strip()]
    return texts[0][:300] if texts else "(no output)"


def _failure(st: TestState) -> str:
    text = "\n".join(st.output)
    if "race detected during execution of test" in text:
        return "race: the race detector reported a data race during this test"
    if st.action == "skip":
        return "skipped: " + _first_error(st.output)
    return "failed: " + _first_error(st.output)


def _crash_reason(res: proc.ProcResult, ev: Events) -> str:
    tail = "\n".join(ev.tail) + "\n" + res.stderr_text()
    m = re.search(r"panic: test timed out after (\S+)", tail)
    if m:
        return f"timeout: Go's -test.timeout ({m.group(1)}) fired while it ran"
    m = re.search(r"^(?:panic: (.*)|(fatal error: .*))$", tail, re.M)
    if m:
        return f"panic: {(m.group(1) or m.group(2)).removesuffix(' [recovered, repanicked]')[:240]}"
    if res.output_limited:
        return "crash: the test binary printed more than the output limit"
    err = [ln for ln in res.stderr_text().splitlines() if ln.strip()]
    if err and not ev.tests:
        return f"crash: the test binary {res.describe_exit()}: {err[0][:200]}"
    return f"crash: the test binary {res.describe_exit()}"


# -- the grader ---------------------------------------------------------------
class GotestGrader:
    kind: ClassVar[str] = "gotest"

    def needs_race(self, task: Task) -> bool:
        return False    # the race build here is the test binary's (built in score)

    def preflight(self, exam: Exam) -> None:
        """The test files exist (checked at load) and share one package clause."""
        for task in exam.tasks:
            try:
                test_package(exam, task)
            except GradingError as e:
                raise ExamError(f"exam '{exam.id}', task '{task.id}': {e.message}") from e

    def score(self, run: GradingRun) -> tuple[list[CheckResult], dict[str, object]]:
        exam, task = run.exam, run.task
        package = test_package(exam, task)
        why = screen_answer(run.source, package)
        if why is not None:
            return [CheckResult.failing(n, p, f"rejected: {why}") for n, p in run.names], {"gotest": "rejected"}
        binary, log, build_s = _compile_tests(run, run.toolchain, package)
        details: dict[str, object] = {"test_build_s": round(build_s, 3), "race": task.race}
        if binary is None:
            details.update(gotest="test build failed", test_build_log=log[-4000:])
            why = "build: the exam's tests do not compile with the answer: " + first_lines(
                "\n".join(ln for ln in log.splitlines() if not ln.startswith("#")), 3)
            return [CheckResult.failing(n, p, why) for n, p in run.names], details
        outcome, rounds, crashes = _run_tests(run, binary)
        never = "never ran: the test binary did not reach it"
        if crashes and not outcome:
            never = f"never ran: the test binary stopped before any test started ({crashes[0].split(': ', 1)[1]})"

        details.update(gotest="ran", test_runs=rounds)
        if crashes:
            details["crashes"] = crashes
        results = []
        for n, p in run.names:
            got = outcome.get(n)
            if got is None:
                results.append(CheckResult.not_run(n, p, never))
            elif got == "":
                results.append(CheckResult.passing(n, p))
            else:
                results.append(CheckResult.failing(n, p, got))
        kinds = sorted({r.detail.split(":", 1)[0] for r in results if not r.passed})
        if kinds:
            details["failure_kinds"] = kinds
        return results, details


def _compile_tests(run: GradingRun, toolchain: Toolchain, package: str) -> tuple[Path | None, str, float]:
    """(test binary or None, build log, seconds) for the answer plus the exam's tests."""
    exam, task = run.exam, run.task
    files = {ANSWER_FILE: run.source, **{Path(rel).name: exam.read(rel) for rel in task.tests}}
    timeout = exam.manifest.limits.build_timeout_s
    b = toolchain.compile(files, run.workdir / "gotest-build", f"{package}.test", ("test", "-c", "-vet=off"),
                          race=task.race, timeout_s=timeout)
    if b.status is BuildStatus.TIMEOUT:
        # The answer alone built within the limit: a test build past it is the machine's fault.
        raise GradingError(f"the test build ran past {timeout:.0f}s (machine too slow? raise build_timeout_s)")
    if b.ok:
        return b.binary, b.log, b.wall_s
    if b.status is BuildStatus.ENVIRONMENT_ERROR and "_test.go" not in b.log and ANSWER_FILE not in b.log:
        raise GradingError(f"test build environment: {first_lines(b.log, 3)}")
    return None, b.log, b.wall_s


def _run_tests(run: GradingRun, binary: Path) -> tuple[dict[str, str], int, list[str]]:
    """Each declared check's result ("" for a pass, else the reason), the number of
    runs of the binary (one per top-level test), and why each run that crashed did."""
    exam = run.exam
    scale = _time_scale(_passed_to_checks())
    go_timeout = exam.manifest.limits.check_timeout_s * scale
    limits = run_limits(exam, wall_s=go_timeout + WALL_MARGIN_S)
    if run.task.race:
        # Address space is not memory (the grading's cgroup bounds that): ThreadSanitizer
        # reserves gigabytes it never touches, and dies at start under a 1 GiB limit.
        limits = replace(limits, address_space=max(limits.address_space or 0, RACE_ADDRESS_SPACE_MB * proc.MiB))
    scratch = exam.manifest.limits.scratch_mb * proc.MiB
    names = [n for n, _ in run.names]
    tops = list(dict.fromkeys(n.split("/", 1)[0] for n in names))   # top-level tests, in order
    outcome: dict[str, str] = {}
    crashes: list[str] = []
    runs = 0
    for top in tops:
        runs += 1
        home = run.workdir / f"gotest-home-{runs}"
        env = proc.minimal_env({"GOMAXPROCS": "2", "GOTRACEBACK": "all",
                                "GORACE": "halt_on_error=0 atexit_sleep_ms=0"}, home=home)
        argv = [str(binary), "-test.v=test2json", "-test.paniconexit0", "-test.count=1",
                f"-test.timeout={go_timeout:.3f}s", f"-test.run=^{re.escape(top)}$"]
        res = sandbox.run(argv, env=env, cwd=home, limits=limits, private=[home], private_bytes=scratch,
                          readable=[binary], role=sandbox.Role.RUN, group=run.group, sandbox=run.box)
        assert isinstance(res, proc.ProcResult)
        ev = parse_test2json(res.stdout_text())
        if res.timed_out and not re.search(r"panic: test timed out", res.stdout_text() + res.stderr_text()):
            raise GradingError(f"the test binary ran past our {limits.wall_s:.0f}s wall limit before Go's own "
                               f"-test.timeout fired (machine too slow or stopped?)")
        crashed = res.returncode not in (0, 1) or res.timed_out or res.output_limited
        reason = _crash_reason(res, ev) if crashed else ""
        hit = set(ev.running()) | (set(ev.final_fails) if reason.startswith("panic") else set())
        for name, st in ev.tests.items():
            if name in hit:
                outcome[name] = reason or "crash: the test binary stopped during this test"
            elif st.action == "pass":
                outcome[name] = ""
            else:
                outcome[name] = _failure(st)
        if crashed:
            crashes.append(f"{top}: {reason}")
            if not ev.tests:
                break           # it dies before any test starts: so would every other run
    for n in names:             # a subtest inside a crashed test that never started
        top = n.split("/", 1)[0]
        if n not in outcome and outcome.get(top, "").startswith(("panic", "timeout", "crash")):
            outcome[n] = outcome[top]
    return outcome, runs, crashes
