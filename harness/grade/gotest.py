"""The ``gotest`` grader: the exam's Go tests, compiled with the answer, and a verdict
that only trusted code writes.

The task lists its ``*_test.go`` files (``tests = [...]`` in exam.toml) and its
checks (``[[tasks.checks]]``): each check is a test or subtest name (``TestCancel``,
``TestPool/zero-workers``) with its points. Grading:

1. **Read the answer with the Go toolchain** (``go list -json`` in the build sandbox,
   never text matching): its package name, its imports, its embeds, cgo and build
   constraints. It must be the tests' package, use no cgo, embed nothing, and import
   only the task's allowed standard packages: ``SAFE_IMPORTS`` (packages that give no
   access to files, descriptors, processes, memory, the network, the runtime, the
   environment or the test binary: no ``os``, ``syscall``, ``unsafe``, ``reflect``,
   ``runtime*``, ``embed``, ``testing``, ``flag``, ``net/http``, ...) plus the task's
   ``allowed_imports``. Otherwise every check fails with the reason (``rejected``).
   ``//go:linkname`` needs ``unsafe`` and ``//go:embed`` needs ``embed``, so the
   compiler refuses both without them.
2. **Compile the test binary** (``go test -c``, ``-race`` when the task sets
   ``race = true``) from the answer's files, the exam's test files and one file of
   ours (``harness.grade.gotest_harness``) in the external test package
   ``<package>_test``: its test ``TestSweepHarness`` runs each exam test as a subtest
   and writes each one's start and end, as testing itself recorded them, on a
   descriptor inherited from us, each line authenticated (HMAC-SHA256) with a key of
   that process. Tests that do not compile with the answer are the answer's build
   failure (``build_failed``: "the exam's tests do not compile with the answer").
3. **Run the binary once per check**, each as the run role in a sandbox of its own, in
   the grading's cgroup, selected with ``-test.run=^TestSweepHarness$/^Test$[/^sub$]``,
   with ``-test.paniconexit0`` and ``-test.timeout`` set to the exam's
   ``check_timeout_s`` (times ``SWEEP_CHECK_TIME_SCALE``). A process per check keeps
   the checks independent: a panic, a hang, a leaked goroutine or a data race in one
   cannot touch another.
4. **Classify.** A check passes only when our verdict line says its test passed (a
   subtest check: its parent passed, called t.Run, and a subtest ran; and testing's
   own output does not show that subtest skipped or failed: the answer can add lines
   to the output, never remove them). The binary's ``-test.v=test2json`` output is
   read only to explain a failure: ``failed`` (the test's first error line), ``race``,
   ``panic``, ``timeout`` (Go's ``-test.timeout`` fired), ``crash`` (the binary exited
   or was killed during it), ``skipped``, ``never ran``. A check with no verdict fails:
   the denominator is fixed.

The answer's prints and exits can only make its own checks fail. Limits of the design
(docs/security.md): an answer allowed a package outside the safe set (a task's
``allowed_imports``) could reach the descriptor or the key, so its grades are stored
as ``trust = "self-reported"``; a data race of the answer's could in principle corrupt
memory in the test's process (the race tasks run under ``-race``, which reports it).

Whose fault: the binary killed by *our* wall limit (``check_timeout_s`` plus
``WALL_MARGIN_S``, so Go's own ``-test.timeout`` always fires first in a process
that is running at all) means the machine was too slow or stopped us: a grading
error, never the model's. So is a test build
past ``build_timeout_s`` when the answer alone built. What happens while the
grading's memory or process limit is exhausted is the answer's doing
(``harness.grade.grading``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import jinja2

from harness.errors import ExamError, GradingError
from harness.exams.exam import Exam, Task
from harness.grade.checks import _passed_to_checks, _time_scale
from harness.grade.gotest_harness import TEMPLATE
from harness.grade.graders import AnswerBuildFailed, GradingRun, run_limits
from harness.results import CheckResult
from harness.runtime import proc, sandbox
from harness.runtime.gotool import BuildStatus, first_lines

ANSWER_FILE = "answer.go"
HARNESS_FILE = "zz_sweep_harness_test.go"
HARNESS_TEST = "TestSweepHarness"
MARKER = "\x16"             # testing's -test.v=test2json framing marker
ERR_START, ERR_END = "\x0f", "\x0e"   # around t.Error output in that mode
WALL_MARGIN_S = 15.0        # our wall limit: Go's -test.timeout plus this
RACE_ADDRESS_SPACE_MB = 4096   # a -race binary's floor: ThreadSanitizer reserves address space up front
VERDICT_CAP = 256 * 1024    # bytes of verdict lines read from one run (a few lines per check)

# Standard packages an answer may import by default: none opens, writes or names a
# descriptor, starts a process, reads the environment or files, reaches memory or the
# runtime, the network or the test binary (its flags, its testing state). ``log``
# writes to stderr and can exit(1), ``fmt`` to stdout: both are program output only.
SAFE_IMPORTS = frozenset({
    "bufio", "bytes", "cmp", "context", "errors", "fmt", "io", "io/fs", "iter", "log", "log/slog",
    "maps", "slices", "sort", "strconv", "strings", "sync", "sync/atomic", "time", "unique", "structs",
    "unicode", "unicode/utf8", "unicode/utf16", "regexp", "regexp/syntax", "math", "math/big",
    "math/bits", "math/cmplx", "math/rand", "math/rand/v2",
    "container/heap", "container/list", "container/ring",
    "encoding", "encoding/ascii85", "encoding/base32", "encoding/base64", "encoding/binary",
    "encoding/csv", "encoding/hex", "encoding/json", "encoding/pem", "encoding/xml",
    "hash", "hash/adler32", "hash/crc32", "hash/crc64", "hash/fnv", "hash/maphash",
    "compress/bzip2", "compress/flate", "compress/gzip", "compress/lzw", "compress/zlib",
    "crypto/md5", "crypto/sha1", "crypto/sha256", "crypto/sha512", "crypto/hmac", "crypto/subtle",
    "crypto/rand", "html", "net/url", "net/netip", "path", "text/scanner", "text/tabwriter",
})

_FRAME = re.compile(r"^(?:=== (RUN|PAUSE|CONT|NAME)\s+(\S*)|--- (PASS|FAIL|SKIP): (\S+) \(([\d.]+)s\))")
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_]\w*)", re.M)
_RESERVED = re.compile(r"\bfunc\s+(TestMain|TestSweepHarness\w*|sweepHarness\w*)\b|\b(sweepHarness\w*)\b")


def _strip_comments(src: str) -> str:
    """Trusted test source without comments (rough: strings are not parsed); used on
    the exam's own files only, never to judge an answer."""
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    return re.sub(r"//.*", "", src)


def test_package(exam: Exam, task: Task) -> str:
    """The package clause the exam's test files share (``copier`` or ``copier_test``)."""
    names = set()
    for rel in task.tests:
        m = _PACKAGE.search(_strip_comments(exam.read(rel)))
        if m is None:
            raise GradingError(f"{rel} has no package clause")
        names.add(m.group(1))
    if len(names) != 1:
        raise GradingError(f"the task's test files declare different packages: {', '.join(sorted(names))}")
    return names.pop()


def answer_package(test_clause: str) -> str:
    """The package the answer must declare: the tests' package, without ``_test``."""
    return test_clause.removesuffix("_test")


def allowed_imports(task: Task) -> frozenset[str]:
    return SAFE_IMPORTS | frozenset(task.allowed_imports)


def screen_listing(listing: dict[str, object], package: str, files: list[str], allowed: frozenset[str]) -> str | None:
    """Why the answer (as ``go list -json`` read it) may not be compiled with the exam's
    tests, or None."""
    ignored = [f for f in _strings(listing.get("IgnoredGoFiles")) if f in files]
    if ignored:
        return f"build constraints exclude {ignored[0]} (a //go:build line)"
    name = listing.get("Name")
    if not name:
        err = listing.get("Error")
        text = err.get("Err") if isinstance(err, dict) else None
        return f"the Go toolchain could not read the answer's package: {text or 'no Go files'}"
    if name != package:
        return f"the answer is package {name}; the task's API is package {package}"
    if _strings(listing.get("CgoFiles")):
        return "uses cgo (import \"C\"), which a gotest answer may not"
    embeds = _strings(listing.get("EmbedPatterns"))
    if embeds:
        return f"embeds files (//go:embed {embeds[0]}), which a gotest answer may not"
    refused = [p for p in _strings(listing.get("Imports")) if p not in allowed]
    if refused:
        return (f"imports {refused[0]}, which this task does not allow (an answer may import only standard "
                "packages without access to files, processes, memory, the network, the runtime or the test "
                "binary, plus the task's allowed_imports)")
    return None


def _strings(v: object) -> list[str]:
    return [str(x) for x in v] if isinstance(v, list) else []


def harness_source(test_clause: str, tests: list[str]) -> str:
    """Our test file: ``TestSweepHarness`` and the table of the exam's top-level tests."""
    internal = not test_clause.endswith("_test")
    return jinja2.Template(TEMPLATE, keep_trailing_newline=True).render(
        xpkg=f"{answer_package(test_clause)}_test", internal=internal, import_path="answer",
        tests=tests, harness_test=HARNESS_TEST)


def _top(name: str) -> str:
    return name.split("/", 1)[0]


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


def _unwrap(name: str) -> str:
    """A test's name without our harness test's prefix."""
    return name.removeprefix(HARNESS_TEST + "/")


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
        verb, name = m.group(1), _unwrap(m.group(2) or "")
        if verb is not None:
            if verb == "RUN":
                ev.tests[name] = TestState()
                ev.final_fails = []
            current = name or None
            continue
        result, name = m.group(3), _unwrap(m.group(4) or "")
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


# -- the verdict channel ------------------------------------------------------
@dataclass
class Verdicts:
    """What our harness file wrote in one run: tests started, and how each ended."""

    started: list[str] = field(default_factory=list)
    ended: dict[str, dict[str, str]] = field(default_factory=dict)   # name -> status, ran, sub, parallel


def read_verdicts(data: bytes, key: bytes) -> Verdicts:
    v = Verdicts()
    for raw in data.decode("ascii", errors="replace").splitlines():
        mac, _, body = raw.partition(" ")
        want = hmac.new(key, body.encode("ascii", errors="replace"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, want):
            continue                 # not ours: nothing else can write the pipe, and nothing unsigned counts
        words = body.split(" ")
        if words[0] == "start" and len(words) == 2:
            v.started.append(words[1])
        elif words[0] == "end" and len(words) >= 3:
            flags = dict(w.split("=", 1) for w in words[3:] if "=" in w)
            v.ended[words[1]] = {"status": words[2], **flags}
    return v


def _framed(stdout: str, verb: str, name: str) -> bool:
    """Whether testing printed ``--- VERB: name (`` anywhere in the output. The answer
    can add bytes to its stdout, not remove the testing package's own: a line of
    testing's that the answer's output split is still found."""
    return f"{MARKER}--- {verb}: {HARNESS_TEST}/{name} (" in stdout


# -- the grader ---------------------------------------------------------------
class GotestGrader:
    kind: ClassVar[str] = "gotest"

    def needs_race(self, task: Task) -> bool:
        return False    # the race build here is the test binary's (built in score)

    def preflight(self, exam: Exam) -> None:
        """The test files share one package clause, declare every check's top-level
        test, and leave our names free (TestMain, TestSweepHarness*, sweepHarness*)."""
        for task in exam.tasks:
            where = f"exam '{exam.id}', task '{task.id}'"
            try:
                test_package(exam, task)
            except GradingError as e:
                raise ExamError(f"{where}: {e.message}") from e
            text = "\n".join(_strip_comments(exam.read(rel)) for rel in task.tests)
            m = _RESERVED.search(text)
            if m:
                raise ExamError(f"{where}: the test files declare {m.group(1) or m.group(2)}, a name the gotest "
                                "grader reserves for its own harness (TestMain, TestSweepHarness*, sweepHarness*)")
            declared = set(re.findall(r"^func\s+(Test\w*)\s*\(\s*\w+\s+\*testing\.T\s*\)", text, re.M))
            missing = [c.name for c in task.checks if _top(c.name) not in declared]
            if missing:
                raise ExamError(f"{where}: check {missing[0]!r} names no test of the task's test files (no "
                                f"func {_top(missing[0])}(t *testing.T) in {', '.join(task.tests)})")

    def score(self, run: GradingRun) -> tuple[list[CheckResult], dict[str, object]]:
        exam, task = run.exam, run.task
        clause = test_package(exam, task)
        package = answer_package(clause)
        files = dict(run.files or {ANSWER_FILE: run.source})
        listing, log = run.toolchain.list_package(files, run.workdir / "gotest-list",
                                                  timeout_s=exam.manifest.limits.build_timeout_s)
        if listing is None:
            raise GradingError(f"go list could not read the answer: {first_lines(log, 3)}")
        why = screen_listing(listing, package, sorted(files), allowed_imports(task))
        if why is not None:
            return [CheckResult.failing(n, p, f"rejected: {why}") for n, p in run.names], {"gotest": "rejected"}
        imports = _strings(listing.get("Imports"))
        trust = "verified" if set(imports) <= SAFE_IMPORTS else "self-reported"
        binary, log, build_s = _compile_tests(run, files, clause)
        details: dict[str, object] = {"test_build_s": round(build_s, 3), "race": task.race, "trust": trust}
        if trust != "verified":
            details["unsafe_imports"] = sorted(set(imports) - SAFE_IMPORTS)
        if binary is None:
            cause = first_lines("\n".join(ln for ln in log.splitlines() if not ln.startswith("#")), 3)
            raise AnswerBuildFailed(f"the exam's tests do not compile with the answer: {cause}", log,
                                    {**details, "gotest": "test build failed"})
        outcome, runs, crashes = _run_tests(run, binary)
        details.update(gotest="ran", test_runs=runs)
        if crashes:
            details["crashes"] = crashes
        results = []
        for n, p in run.names:
            got = outcome[n]
            results.append(CheckResult.passing(n, p) if got == "" else CheckResult.failing(n, p, got))
        kinds = sorted({r.detail.split(":", 1)[0] for r in results if not r.passed})
        if kinds:
            details["failure_kinds"] = kinds
        return results, details


def _compile_tests(run: GradingRun, files: dict[str, str], clause: str) -> tuple[Path | None, str, float]:
    """(test binary or None, build log, seconds) for the answer plus the exam's tests and ours."""
    exam, task = run.exam, run.task
    tops = list(dict.fromkeys(_top(n) for n, _ in run.names))
    all_files = {**files, **{Path(rel).name: exam.read(rel) for rel in task.tests},
                 HARNESS_FILE: harness_source(clause, tops)}
    timeout = exam.manifest.limits.build_timeout_s
    b = run.toolchain.compile(all_files, run.workdir / "gotest-build", f"{answer_package(clause)}.test",
                              ("test", "-c", "-vet=off"), race=task.race, timeout_s=timeout)
    if b.status is BuildStatus.TIMEOUT:
        # The answer alone built within the limit: a test build past it is the machine's fault.
        raise GradingError(f"the test build ran past {timeout:.0f}s (machine too slow? raise build_timeout_s)")
    if b.ok:
        return b.binary, b.log, b.wall_s
    answers_fault = any(f in b.log for f in files)
    if b.status is BuildStatus.ENVIRONMENT_ERROR and "_test.go" not in b.log and not answers_fault:
        raise GradingError(f"test build environment: {first_lines(b.log, 3)}")
    if HARNESS_FILE in b.log and not answers_fault:
        raise GradingError(f"the grader's own test file did not compile: {first_lines(b.log, 3)}")
    return None, b.log, b.wall_s


def _selector(name: str) -> str:
    return "/".join(f"^{re.escape(part)}$" for part in (HARNESS_TEST, *name.split("/")))


def _run_tests(run: GradingRun, binary: Path) -> tuple[dict[str, str], int, list[str]]:
    """Each declared check's result ("" for a pass, else the reason), the number of
    runs of the binary (one per check), and why each run that crashed did."""
    exam = run.exam
    scale = _time_scale(_passed_to_checks())
    go_timeout = exam.manifest.limits.check_timeout_s * scale
    limits = run_limits(exam, wall_s=go_timeout + WALL_MARGIN_S)
    if run.task.race:
        # Address space is not memory (the grading's cgroup bounds that): ThreadSanitizer
        # reserves gigabytes it never touches, and dies at start under a 1 GiB limit.
        limits = replace(limits, address_space=max(limits.address_space or 0, RACE_ADDRESS_SPACE_MB * proc.MiB))
    scratch = exam.manifest.limits.scratch_mb * proc.MiB
    outcome: dict[str, str] = {}
    crashes: list[str] = []
    runs = 0
    for name, _ in run.names:
        runs += 1
        home = run.workdir / f"gotest-home-{runs}"
        key = secrets.token_hex(32).encode("ascii")
        r, w = os.pipe()
        env = proc.minimal_env({"GOMAXPROCS": "2", "GOTRACEBACK": "all",
                                "GORACE": "halt_on_error=0 atexit_sleep_ms=0",
                                "SWEEP_VERDICT_FD": str(w), "SWEEP_VERDICT_KEY": key.decode()}, home=home)
        argv = [str(binary), "-test.v=test2json", "-test.paniconexit0", "-test.count=1",
                f"-test.timeout={go_timeout:.3f}s", f"-test.run={_selector(name)}"]
        reader = proc.Capture(os.fdopen(r, "rb", buffering=0), VERDICT_CAP, lambda: None)
        try:
            res = sandbox.run(argv, env=env, cwd=home, limits=limits, private=[home], private_bytes=scratch,
                              readable=[binary], role=sandbox.Role.RUN, group=run.group, sandbox=run.box,
                              pass_fds=[w])
        finally:
            os.close(w)
        reader.join(5.0)
        verdicts = read_verdicts(reader.data(), key)
        assert isinstance(res, proc.ProcResult)
        stdout = res.stdout_text()
        ev = parse_test2json(stdout)
        if res.timed_out and not re.search(r"panic: test timed out", stdout + res.stderr_text()):
            raise GradingError(f"the test binary ran past our {limits.wall_s:.0f}s wall limit before Go's own "
                               f"-test.timeout fired (machine too slow or stopped?)")
        crashed = res.returncode not in (0, 1) or res.timed_out or res.output_limited
        reason = _crash_reason(res, ev) if crashed else ""
        outcome[name] = _judge(name, verdicts, ev, stdout, res, reason)
        if crashed:
            crashes.append(f"{name}: {reason}")
            if _top(name) not in verdicts.started:
                # It dies before any test starts: so would every other run.
                why = f"never ran: the test binary stopped before any test started ({reason})"
                for rest, _ in run.names:
                    outcome.setdefault(rest, why)
                break
    return outcome, runs, crashes


def _judge(name: str, v: Verdicts, ev: Events, stdout: str, res: proc.ProcResult, reason: str) -> str:
    """One check's result from our verdict lines ("" for a pass); the program's output
    only explains a failure."""
    top = _top(name)
    end = v.ended.get(top)
    if end is None:
        if top in v.started:
            return reason or f"crash: the test binary {res.describe_exit()} during this test"
        return f"never ran: {reason}" if reason else "never ran: the test binary did not reach it"
    if end.get("parallel") == "true":
        raise GradingError(f"the exam's test {top} calls t.Parallel(), which the gotest harness cannot judge "
                           "(its verdict would be read before it ran)")
    st = ev.tests.get(name) or ev.tests.get(top) or TestState()
    if end["status"] == "skip":
        return "skipped: " + _first_error(st.output)
    if end["status"] != "pass":
        return _failure(replace(st, action="fail"))
    if name == top:
        return ""
    # A subtest check: its parent passed; it must have run, and not been skipped.
    if "?" in (end.get("ran"), end.get("sub")):
        raise GradingError("this Go version's testing package has none of the fields the harness reads "
                           "to see that a subtest ran (ran, hasSub)")
    if end.get("sub") != "true" or end.get("ran") != "true":
        return f"never ran: {top} passed without running {name}"
    if _framed(stdout, "SKIP", name):
        return "skipped: " + _first_error(st.output)
    if _framed(stdout, "FAIL", name) or res.output_limited:
        return _failure(replace(st, action="fail"))
    return ""
