"""Grading one piece of Go source for one task, by execution.

``grade_source`` builds the code with the shared toolchain, then scores it with the
exam's grader:

* ``stdio``: checks ``build`` (1 point), ``runs`` (1 point: the first case exits 0
  within its time limit) and one ``case:<name>`` check per hidden case, the rest of
  the task's points split evenly over them. A case passes when the program exits 0
  within the limit and its stdout equals the expected text after trimming trailing
  whitespace on each line and trailing blank lines.
* ``checks``: the exam's ``checks.py`` (see ``harness.checkkit``).

The denominator is fixed: a build failure scores 0 on every check and the grade
still has the task's full ``max_points``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness import driver, proc, sandbox
from harness.checkkit import CheckContext
from harness.errors import ExamError, GradingError
from harness.exams import Case, Exam, Task
from harness.gotool import BuildResult, BuildStatus, Toolchain, explain_build
from harness.results import CheckResult, CheckStatus, Grade, Outcome, total

BUILD_POINTS = 1.0
RUNS_POINTS = 1.0
TIME_SCALE_ENV = "SWEEP_CHECK_TIME_SCALE"   # the one variable the check driver gets from our environment


def normalize_output(text: str) -> str:
    """Trailing whitespace of each line and trailing blank lines do not count."""
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines)


def check_names(exam: Exam, task: Task) -> list[tuple[str, float]]:
    """The task's checks and their points, in report order (the fixed denominator)."""
    if exam.manifest.grader == "stdio":
        per_case = (task.points - BUILD_POINTS - RUNS_POINTS) / len(task.cases)
        return [("build", BUILD_POINTS), ("runs", RUNS_POINTS)] + [
            (f"case:{c.name}", per_case) for c in task.cases
        ]
    return list(load_checks_module(exam).CHECKS)


_MODULES: dict[tuple[str, str], types.ModuleType] = {}
_MODULES_LOCK = threading.Lock()


def load_checks_module(exam: Exam) -> types.ModuleType:
    key = (str(exam.root), exam.grader_hash)
    with _MODULES_LOCK:
        if key in _MODULES:
            return _MODULES[key]
        path = exam.root / "checks.py"
        name = f"_sweep_checks_{exam.id.replace('-', '_')}_{exam.grader_hash}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ExamError(f"exam '{exam.id}': cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - any error in exam code is an exam error
            raise ExamError(f"exam '{exam.id}': {path} fails to import: {type(e).__name__}: {e}") from e
        checks = getattr(module, "CHECKS", None)
        if not checks or not callable(getattr(module, "run_checks", None)):
            raise ExamError(f"exam '{exam.id}': {path} must define CHECKS and run_checks(ctx)")
        for task in exam.tasks:
            pts = round(sum(p for _, p in checks), 6)
            if pts != round(task.points, 6):
                raise ExamError(
                    f"exam '{exam.id}': CHECKS in {path} sum to {pts} points but task "
                    f"'{task.id}' has {task.points}"
                )
        _MODULES[key] = module
        return module


def _run_limits(exam: Exam, wall_s: float | None = None) -> proc.Limits:
    lim = exam.manifest.limits
    return proc.Limits(
        wall_s=wall_s if wall_s is not None else lim.run_timeout_s,
        cpu_s=int(max(lim.run_timeout_s, wall_s or 0)) + 5,
        address_space=lim.memory_mb * proc.MiB,
        file_size=64 * proc.MiB,
        open_files=1024,
        output_bytes=lim.output_kb * 1024,
    )


def grade_source(
    exam: Exam,
    task: Task,
    source: str,
    toolchain: Toolchain,
    *,
    scratch_parent: Path | None = None,
) -> Grade:
    """Build and score ``source``; returns a Grade (a grading_error Grade when our
    own infrastructure failed). Leaves nothing behind in ``scratch_parent``."""
    started = time.monotonic()
    names = check_names(exam, task)
    workdir = Path(tempfile.mkdtemp(prefix=sandbox.scratch_prefix(exam.id, task.id), dir=scratch_parent))
    os.chmod(workdir, 0o711)   # the unprivileged uids (as root) walk to their files; nobody lists it
    try:
        grade = _grade_in(exam, task, source, toolchain, workdir, names)
    except ExamError:
        raise
    except GradingError as e:
        grade = _error_grade(names, task, e.message)
    except Exception as e:  # noqa: BLE001 - anything unexpected is our fault, not the model's
        grade = _error_grade(names, task, f"{type(e).__name__}: {e}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # Details quote what the program and the compiler printed: no terminal control
    # sequences reach a user's terminal through `sweep grade` or `sweep logs`.
    return Grade(
        outcome=grade.outcome,
        points=grade.points,
        max_points=grade.max_points,
        checks=tuple(CheckResult(c.name, c.status, c.points, c.max_points, printable(c.detail)) for c in grade.checks),
        explanation=printable(grade.explanation),
        grader_hash=exam.grader_hash,
        duration_s=round(time.monotonic() - started, 3),
        details=grade.details,
    )


def _error_grade(names: list[tuple[str, float]], task: Task, why: str) -> Grade:
    checks = tuple(CheckResult(n, CheckStatus.ERROR, 0.0, p, why) for n, p in names)
    return Grade(Outcome.GRADING_ERROR, 0.0, task.points, checks, f"grading error: {why}")


def _build_failed(names: list[tuple[str, float]], task: Task, build: BuildResult) -> Grade:
    why = explain_build(build)
    if build.status is BuildStatus.ENVIRONMENT_ERROR:
        return _error_grade(names, task, f"build environment: {why}")
    checks = []
    for n, p in names:
        if n == "build":
            checks.append(CheckResult.failing(n, p, why))
        else:
            checks.append(CheckResult.not_run(n, p, "the program did not build"))
    return Grade(Outcome.BUILD_FAILED, 0.0, task.points, tuple(checks), f"build failed: {why}",
                 details={"build_log": build.log[-4000:], "build_status": build.status.value,
                          "isolation": sandbox.current().label()})


def _grade_in(
    exam: Exam,
    task: Task,
    source: str,
    toolchain: Toolchain,
    workdir: Path,
    names: list[tuple[str, float]],
) -> Grade:
    limits = exam.manifest.limits
    race_build: BuildResult | None = None
    if exam.manifest.grader != "stdio" and task.race:
        # Both at once: the normal build's result decides first, as if it ran alone.
        build, race_build = toolchain.build_with_race(source, workdir, timeout_s=limits.build_timeout_s)
        # One build of the source ran past our time limit while the other built it: the
        # machine was slow (our fault), not the code. Try that build once more alone.
        if build.ok and race_build.status is BuildStatus.TIMEOUT:
            race_build = toolchain.build(source, workdir, race=True, timeout_s=limits.build_timeout_s)
            if race_build.status is BuildStatus.TIMEOUT:
                raise GradingError(f"the -race build ran past {limits.build_timeout_s:.0f}s twice while the normal "
                                   "build succeeded (machine too slow? raise build_timeout_s)")
        elif race_build.ok and build.status is BuildStatus.TIMEOUT:
            build = toolchain.build(source, workdir, timeout_s=limits.build_timeout_s)
            if build.status is BuildStatus.TIMEOUT:
                raise GradingError(f"the build ran past {limits.build_timeout_s:.0f}s twice while the -race build "
                                   "succeeded (machine too slow? raise build_timeout_s)")
    else:
        build = toolchain.build(source, workdir, timeout_s=limits.build_timeout_s)
    if not build.ok:
        return _build_failed(names, task, build)
    box = sandbox.current()
    with box.grading_group(memory_bytes=limits.grading_memory_mb * proc.MiB) as group:
        try:
            grade = _run_phase(exam, task, build, race_build, workdir, names, box, group)
            error: GradingError | None = None
        except GradingError as e:
            grade, error = _error_grade(names, task, e.message), e
        ooms = group.oom_kills()
        peak = group.memory_peak()
        forks = group.pids_limit_hits()
    errored = [c for c in grade.checks if c.status is CheckStatus.ERROR]
    if errored or error is not None:
        if not (ooms or forks):
            if error is not None:
                raise error
            raise GradingError(f"check {errored[0].name} errored: {errored[0].detail}")
        # The grading's own limits were hit (its processes exhausted the memory or the
        # process count we give a grading): what broke then is the program's doing.
        grade = _limits_hit(grade, names, errored, error)
    details = dict(grade.details)
    details["isolation"] = box.label()
    if peak is not None:
        details["memory_peak_mb"] = round(peak / proc.MiB, 1)
    checks = grade.checks
    if forks:
        details["pids_limit_hits"] = forks
        why = (f" [the grading's process limit ({group.pids_max} processes and threads) was reached {forks} "
               "time(s)]")
        checks = tuple(c if c.passed else CheckResult(c.name, c.status, c.points, c.max_points, c.detail + why)
                       for c in checks)
    if ooms:
        details["oom_kills"] = ooms
        why = (f" [the grading's memory limit of {limits.grading_memory_mb} MiB was exceeded: the kernel killed "
               f"{ooms} process(es)]")
        checks = tuple(c if c.passed else CheckResult(c.name, c.status, c.points, c.max_points, c.detail + why)
                       for c in checks)
    return Grade(grade.outcome, grade.points, grade.max_points, checks, grade.explanation, details=details)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters (escape sequences among them) shown as
    ``\\xNN``; newlines and tabs stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _limits_hit(grade: Grade, names: list[tuple[str, float]], errored: list[CheckResult],
                error: GradingError | None) -> Grade:
    """A grade whose errors came while the grading's limits were exhausted: the
    checks that errored (all of them, if the driver failed as a whole) fail."""
    if error is not None:
        checks = tuple(CheckResult.failing(n, p, f"could not be checked: {error.message}") for n, p in names)
    else:
        checks = tuple(CheckResult.failing(c.name, c.max_points, f"could not be checked: {c.detail}")
                       if c.status is CheckStatus.ERROR else c for c in grade.checks)
    pts, mx = total(checks)
    failed = [c.name for c in checks if not c.passed]
    return Grade(Outcome.RAN, pts, mx, checks, "failed: " + ", ".join(failed), details=dict(grade.details))


def _run_phase(
    exam: Exam,
    task: Task,
    build: BuildResult,
    race_build: BuildResult | None,
    workdir: Path,
    names: list[tuple[str, float]],
    box: sandbox.Sandbox,
    group: sandbox.Group,
) -> Grade:
    details: dict[str, object] = {"build_s": round(build.wall_s, 3)}
    if exam.manifest.grader == "stdio":
        checks = _stdio_checks(exam, task, build.binary, workdir, names, box, group)  # type: ignore[arg-type]
    else:
        race_binary = None
        if race_build is not None:
            details["race_build_s"] = round(race_build.wall_s, 3)
            if race_build.status is BuildStatus.ENVIRONMENT_ERROR:
                raise GradingError(f"-race build environment: {explain_build(race_build)}")
            race_binary = race_build.binary
        passed = _passed_to_checks()   # what the driver gets of our environment (read once)
        home = workdir / "home"
        ctx = CheckContext(
            binary=build.binary,  # type: ignore[arg-type]
            race_binary=race_binary,
            race_build=race_build,
            workdir=workdir,
            # SWEEP_CHECK_TIME_SCALE stretches the checks' deadlines, so the limits around
            # them stretch too (else a stretched wait would end in a killed program or driver)
            limits=_run_limits(exam, wall_s=exam.manifest.limits.run_timeout_s * _time_scale(passed)),
            env=proc.minimal_env({"GOMAXPROCS": "2", "GOTRACEBACK": "all"}, home=home),
            task_id=task.id,
            inner=sandbox.inner_for(box, exam.manifest.limits.scratch_mb * proc.MiB),
        )
        load_checks_module(exam)  # a broken checks.py is an exam error, raised here
        results, notes = _run_driver(exam, ctx, passed, box, group, names)
        ctx.notes.update(notes)
        by_name = {r.name: r for r in results}
        missing = [n for n, _ in names if n not in by_name]
        if missing:
            raise GradingError(f"checks.py returned no result for {', '.join(missing)}")
        checks = [by_name[n] for n, _ in names]
        for (n, p), r in zip(names, checks, strict=True):
            if round(r.max_points, 6) != round(p, 6):
                raise GradingError(f"check {n}: max_points {r.max_points} != declared {p}")
        details.update(ctx.notes)   # checks that errored are decided in _grade_in (limits hit?)
    pts, mx = total(checks)
    failed = [c.name for c in checks if not c.passed]
    expl = "all checks passed" if not failed else "failed: " + ", ".join(failed)
    return Grade(Outcome.RAN, pts, mx, tuple(checks), expl, details=details)


def _run_driver(exam: Exam, ctx: CheckContext, passed: dict[str, str], box: sandbox.Sandbox,
                group: sandbox.Group,
                names: list[tuple[str, float]]) -> tuple[list[CheckResult], dict[str, object]]:
    """Run checks.py in a child process (``harness.driver``) inside the sandbox,
    where the checks' mock servers and the model's programs share a private
    loopback network. The result comes back on a pipe of its own, tagged with a
    per-grading nonce; the programs never receive either, and nothing they print
    counts. A driver that crashes, hangs or says nothing before any program started
    is our fault (GradingError); one killed while a program was under test fails
    the checks it had not finished (the program's doing: it may exhaust the
    grading's memory, for one)."""
    nonce = secrets.token_hex(16)
    r, w = os.pipe()
    spec = driver.spec_for(ctx, exam.root)
    spec.update(result_fd=w, nonce=nonce)
    home = ctx.workdir / "driver-home"
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home),
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}
    env.update(passed)
    lim = exam.manifest.limits
    binaries = [p for p in (ctx.binary, ctx.race_binary) if p is not None]
    chunks: list[bytes] = []

    def pump() -> None:
        kept = 0
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                return
            if kept < 16 * proc.MiB:
                chunks.append(chunk)
                kept += len(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        res = sandbox.run(
            [sys.executable, "-m", "harness.driver"],
            env=env, cwd=home, role=sandbox.Role.DRIVER, group=group, sandbox=box,
            stdin=json.dumps(spec).encode("utf-8"), pass_fds=(w,),
            limits=proc.Limits(wall_s=lim.check_timeout_s * _time_scale(passed), file_size=64 * proc.MiB,
                               open_files=4096, output_bytes=4 * proc.MiB),
            private=[home], private_bytes=lim.scratch_mb * proc.MiB,
            readable=[*sandbox.python_paths(), exam.root, *binaries, *sandbox.bwrap_readable(box)],
        )
    finally:
        os.close(w)
        reader.join(10)
        os.close(r)
    assert isinstance(res, proc.ProcResult)
    final, started, early = _read_channel(b"".join(chunks), nonce)
    if final is None:
        why = res.describe_exit()
        if res.timed_out or not started:
            tail = res.stderr_text().strip().splitlines()[-3:]
            raise GradingError(f"check driver {why} without a result: {' | '.join(tail)[:400]}")
        # Killed (not by our time limit) while the program was under test: the checks
        # it finished keep their results, every other one fails.
        detail = f"the check driver was {why} while the program was under test"
        results = [early.get(n) or CheckResult.failing(n, p, detail) for n, p in names]
        return results, {"driver_died": why}
    if "error" in final:
        raise GradingError(f"checks.py failed: {final['error']}")
    notes = dict(final.get("notes", {}))
    if TIME_SCALE_ENV in passed:
        notes["check_time_scale"] = float(passed[TIME_SCALE_ENV])  # stored with the grade
    return [CheckResult.from_json(x) for x in final["results"]], notes


def _read_channel(data: bytes, nonce: str) -> tuple[dict[str, Any] | None, bool, dict[str, CheckResult]]:
    """(final answer, whether a program started, checks reported early) from the
    driver's result channel; lines without this grading's nonce are ignored."""
    final: dict[str, Any] | None = None
    started = False
    early: dict[str, CheckResult] = {}
    prefix = nonce.encode() + b" "
    for raw in data.splitlines():
        if not raw.startswith(prefix):
            continue
        try:
            obj = json.loads(raw[len(prefix):])
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        if obj.get("event") == "program_started":
            started = True
        elif obj.get("event") == "check":
            cr = CheckResult.from_json(obj["result"])
            early[cr.name] = cr
        elif "results" in obj or "error" in obj:
            final = obj
    return final, started, early


def _time_scale(passed: dict[str, str]) -> float:
    """SWEEP_CHECK_TIME_SCALE among what ``_passed_to_checks`` passes (validated
    there), at least 1: the outer limits only ever grow."""
    raw = passed.get(TIME_SCALE_ENV)
    return max(1.0, float(raw)) if raw else 1.0


def _passed_to_checks() -> dict[str, str]:
    """What the grader's own environment passes to the check driver: only
    ``SWEEP_CHECK_TIME_SCALE`` (a slow machine stretches the checks' wall-clock
    deadlines with it), and only a positive number: 0 or a typo would end every
    deadline at once and fail correct programs."""
    raw = os.environ.get(TIME_SCALE_ENV, "").strip()
    if not raw:
        return {}
    try:
        scale = float(raw)
    except ValueError:
        scale = 0.0
    if not (scale > 0 and math.isfinite(scale)):
        raise GradingError(f"{TIME_SCALE_ENV}={raw!r} is not a positive number (unset it or use e.g. 2)")
    return {TIME_SCALE_ENV: raw}


def _make_tree(base: Path, case: Case) -> Path:
    tree = base / f"tree-{case.name}"
    tree.mkdir(parents=True)
    for d in case.dirs:
        (tree / d).mkdir(parents=True, exist_ok=True)
    for rel, text in case.files.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(text.encode("utf-8"))
    for rel, size in case.sized_files.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * size)
    for rel, target in case.symlinks.items():
        p = tree / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)
    return tree


def _stdio_checks(
    exam: Exam,
    task: Task,
    binary: Path,
    workdir: Path,
    names: list[tuple[str, float]],
    box: sandbox.Sandbox,
    group: sandbox.Group,
) -> list[CheckResult]:
    points = dict(names)
    limits = _run_limits(exam)
    scratch = exam.manifest.limits.scratch_mb * proc.MiB
    results: list[CheckResult] = [CheckResult.passing("build", points["build"])]
    def run_case(case: Case) -> tuple[Case, proc.ProcResult]:
        tree = _make_tree(workdir / "trees", case) if case.uses_tree else None
        args = [a.replace("{tree}", str(tree)) for a in case.args] if tree else list(case.args)
        home = workdir / f"home-{case.name}"      # private and size-limited: each case its own
        env = proc.minimal_env({"GOMAXPROCS": "2", "GOTRACEBACK": "all"}, home=home)
        res = sandbox.run([str(binary), *args], env=env, cwd=home, limits=limits,
                          stdin=case.stdin.encode("utf-8"), private=[home], private_bytes=scratch,
                          readable=[binary, *([tree] if tree else [])], role=sandbox.Role.RUN,
                          group=group, sandbox=box)
        assert isinstance(res, proc.ProcResult)
        return case, res

    # Cases are independent: run them concurrently, so a hanging program costs one
    # time limit, not one per case.
    with ThreadPoolExecutor(max_workers=min(4, len(task.cases))) as pool:
        runs = list(pool.map(run_case, task.cases))
    first_case, first = runs[0]
    if first.returncode == 0 and not first.timed_out and not first.output_limited:
        results.append(CheckResult.passing("runs", points["runs"]))
    else:
        results.append(CheckResult.failing(
            "runs", points["runs"], f"case {first_case.name}: {first.describe_exit()}{_stderr_tail(first)}"))
    for case, res in runs:
        name = f"case:{case.name}"
        if not res.ok:
            results.append(CheckResult.failing(name, points[name], res.describe_exit() + _stderr_tail(res)))
            continue
        got = normalize_output(res.stdout_text())
        want = normalize_output(case.expect_stdout)
        if got == want:
            results.append(CheckResult.passing(name, points[name]))
        else:
            results.append(CheckResult.failing(name, points[name], _diff_hint(want, got)))
    return results


def _stderr_tail(res: proc.ProcResult) -> str:
    err = res.stderr_text().strip()
    if not err:
        return ""
    line = err.splitlines()[0][:160]
    return f": {line}"


def _diff_hint(want: str, got: str) -> str:
    w, g = want.split("\n"), got.split("\n")
    for i in range(max(len(w), len(g))):
        a = w[i] if i < len(w) else "<missing>"
        b = g[i] if i < len(g) else "<missing>"
        if a != b:
            return f"line {i + 1}: expected {a[:80]!r}, got {b[:80]!r}"
    return "output differs"
