"""The ``checks`` grader: the exam's ``checks.py`` drives the built binary.

``checks.py`` runs in a check driver (``python -m harness.grade.driver``), a child process
inside the sandbox, where the checks' mock servers and the programs share a private
loopback network and each program runs in a sandbox of its own. The driver's result
comes back on a pipe of its own tagged with a per-grading nonce (see
``harness.grade.driver``); the checks and their points are the ones exam.toml declares.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
from typing import Any, ClassVar

from harness.errors import ExamError, GradingError
from harness.exams.checkkit import TIME_SCALE_ENV, CheckContext
from harness.exams.exam import Exam, Task
from harness.grade import driver
from harness.grade.graders import GradingRun, run_limits
from harness.results import CheckResult
from harness.runtime import proc, sandbox
from harness.runtime.gotool import BuildStatus, explain_build


class ChecksGrader:
    kind: ClassVar[str] = "checks"

    def needs_race(self, task: Task) -> bool:
        return task.race

    def preflight(self, exam: Exam) -> None:
        """Import checks.py in a child process (never in ours) and compare its
        CHECKS, if any, with the manifest."""
        r = subprocess.run([sys.executable, "-m", "harness.grade.driver", "--probe", str(exam.root.resolve())],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            why = (r.stdout.strip() or r.stderr.strip().splitlines()[-1:] or ["no output"])
            raise ExamError(why if isinstance(why, str) else why[0])

    def score(self, run: GradingRun) -> tuple[list[CheckResult], dict[str, object]]:
        exam, task, workdir, box = run.exam, run.task, run.workdir, run.box
        details: dict[str, object] = {}
        race_build, race_binary = run.race_build, None
        if race_build is not None:
            details["race_build_s"] = round(race_build.wall_s, 3)
            if race_build.status is BuildStatus.ENVIRONMENT_ERROR:
                raise GradingError(f"-race build environment: {explain_build(race_build)}")
            race_binary = race_build.binary
        passed = _passed_to_checks()   # what the driver gets of our environment (read once)
        home = workdir / "home"
        ctx = CheckContext(
            binary=run.binary,
            race_binary=race_binary,
            race_build=race_build,
            workdir=workdir,
            # SWEEP_CHECK_TIME_SCALE stretches the checks' deadlines, so the limits around
            # them stretch too (else a stretched wait would end in a killed program or driver)
            limits=run_limits(exam, wall_s=exam.manifest.limits.run_timeout_s * _time_scale(passed)),
            env=proc.minimal_env({"GOMAXPROCS": "2", "GOTRACEBACK": "all"}, home=home),
            task_id=task.id,
            inner=sandbox.inner_for(box, exam.manifest.limits.scratch_mb * proc.MiB, run.group),
        )
        results, notes = _run_driver(exam, ctx, passed, box, run.group, run.names)
        by_name = {r.name: r for r in results}
        missing = [n for n, _ in run.names if n not in by_name]
        if missing:
            raise GradingError(f"checks.py returned no result for {', '.join(missing)}")
        checks = [by_name[n] for n, _ in run.names]
        for (n, p), r in zip(run.names, checks, strict=True):
            if round(r.max_points, 6) != round(p, 6):
                raise GradingError(f"check {n}: max_points {r.max_points} != declared {p}")
        details.update(notes)
        return checks, details


def _run_driver(exam: Exam, ctx: CheckContext, passed: dict[str, str], box: sandbox.Sandbox,
                group: sandbox.Group,
                names: list[tuple[str, float]]) -> tuple[list[CheckResult], dict[str, object]]:
    """Run checks.py in a child process (``harness.grade.driver``) inside the sandbox,
    where the checks' mock servers and the model's programs share a private
    loopback network. The result comes back on a pipe of its own, tagged with a
    per-grading nonce; the programs never receive either, and nothing they print
    counts. A driver that crashes or says nothing before any program started is our
    fault (GradingError); so is one killed at its wall limit while its process tree
    was working (the machine was too slow). One killed while a program was under
    test otherwise (the grading's memory exhausted; past its wall limit while the
    processes under it were stopped or waiting: ``ProcResult.overrun_is_programs``)
    fails the checks it had not finished."""
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
    channel = proc.Capture(os.fdopen(r, "rb", buffering=0), 16 * proc.MiB, lambda: None)
    try:
        res = sandbox.run(
            [sys.executable, "-m", "harness.grade.driver"],
            env=env, cwd=home, role=sandbox.Role.DRIVER, group=group, sandbox=box,
            stdin=json.dumps(spec).encode("utf-8"), pass_fds=(w,),
            limits=proc.Limits(wall_s=lim.check_timeout_s * _time_scale(passed), file_size=64 * proc.MiB,
                               open_files=4096, output_bytes=4 * proc.MiB),
            private=[home], private_bytes=lim.scratch_mb * proc.MiB,
            readable=[*sandbox.python_paths(), exam.root, *binaries, *sandbox.bwrap_readable(box)],
        )
    finally:
        os.close(w)
        channel.join(10)
    assert isinstance(res, proc.ProcResult)
    final, started, early = _read_channel(channel.data(), nonce)
    if final is None:
        why = res.describe_exit()
        programs = res.overrun_is_programs() if res.timed_out and started else None
        if (res.timed_out and programs is None) or not started:
            tail = res.stderr_text().strip().splitlines()[-3:]
            measured = f" ({res.describe_overrun()}: machine too slow?)" if res.timed_out else ""
            raise GradingError(f"check driver {why} without a result{measured}: {' | '.join(tail)[:400]}")
        # Killed while the program was under test, by the program's doing (it took the
        # grading's memory; or the driver ran past its limit while the processes under
        # it were stopped or waiting, not working): the checks it finished keep their
        # results, every other one fails.
        if programs is not None:
            detail = f"the check driver ran past its {res.wall_s:.0f}s limit: the program {programs}"
        else:
            detail = f"the check driver was {why} while the program was under test"
        results = [early.get(n) or CheckResult.failing(n, p, detail) for n, p in names]
        return results, {"driver_died": why, **({"overrun": programs} if programs else {})}
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
    from harness.runtime import machine

    raw = machine.read().check_time_scale or ""
    if not raw:
        return {}
    try:
        scale = float(raw)
    except ValueError:
        scale = 0.0
    if not (scale > 0 and math.isfinite(scale)):
        raise GradingError(f"{TIME_SCALE_ENV}={raw!r} is not a positive number (unset it or use e.g. 2)")
    return {TIME_SCALE_ENV: raw}


