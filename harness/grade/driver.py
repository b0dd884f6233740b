"""The check driver: runs an exam's ``checks.py`` against built binaries in a child
process, so the checks, their mock servers and the model's programs share one
sandbox (one private loopback network) and a hung or crashing check cannot take
the harness with it.

    python -m harness.grade.driver < SPEC.json

The spec comes on standard input (never in a file a program could read): the exam
directory, the task, the binaries, the scratch directory, the run limits and
environment, how to start each program (``inner``, see ``harness.runtime.sandbox.Inner``),
and the result channel: ``result_fd``, a descriptor inherited from the harness that
no program ever receives, and ``nonce``, a per-grading secret that tags every line
written to it. The driver makes itself non-dumpable first, so no process of its uid
can read its memory or open its descriptors through ``/proc``.

Lines on the channel (each ``<nonce> <json>``):

* ``{"event": "program_started"}`` before the first program starts;
* ``{"event": "check", "result": {...}}`` whenever the checks report one early;
* ``{"results": [...], "notes": {...}}`` at the end, or ``{"error": "..."}`` (a
  grading error: the exam's fault or ours, never the model's).

Whatever a program prints, on any stream, is not on this channel.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.exams import package as exampkg
from harness.exams.checkkit import CheckContext, CheckResult
from harness.runtime import proc, sandbox
from harness.runtime.gotool import BuildResult, BuildStatus


def spec_for(ctx: CheckContext, exam_root: Path) -> dict[str, Any]:
    rb = ctx.race_build
    return {
        # absolute: the driver runs in the attempt's scratch directory, so a relative
        # exam path (`sweep grade --exam exams/x`) would not resolve there
        "exam_root": str(exam_root.resolve()),
        "task_id": ctx.task_id,
        "binary": str(ctx.binary),
        "race_binary": None if ctx.race_binary is None else str(ctx.race_binary),
        "race_build": None if rb is None else {
            "status": rb.status.value, "binary": None if rb.binary is None else str(rb.binary),
            "log": rb.log[-4000:], "wall_s": rb.wall_s, "race": rb.race},
        "workdir": str(ctx.workdir),
        "limits": asdict(ctx.limits),
        "env": ctx.env,
        "inner": None if ctx.inner is None else ctx.inner.to_json(),
    }


def context_from(spec: dict[str, Any]) -> CheckContext:
    rb = spec.get("race_build")
    race_build = None if rb is None else BuildResult(
        BuildStatus(rb["status"]), None if rb["binary"] is None else Path(rb["binary"]), rb["log"],
        float(rb["wall_s"]), bool(rb["race"]))
    inner = spec.get("inner")
    return CheckContext(
        binary=Path(spec["binary"]),
        race_binary=None if spec["race_binary"] is None else Path(spec["race_binary"]),
        race_build=race_build,
        workdir=Path(spec["workdir"]),
        limits=proc.Limits(**spec["limits"]),
        env=dict(spec["env"]),
        task_id=spec["task_id"],
        inner=None if inner is None else sandbox.Inner.from_json(inner),
    )


class Channel:
    """Writes nonce-tagged JSON lines to the inherited result descriptor."""

    def __init__(self, fd: int, nonce: str) -> None:
        os.set_inheritable(fd, False)      # no program started from here gets it
        self._f = os.fdopen(fd, "w", encoding="utf-8", closefd=True)
        self._nonce = nonce
        self._lock = threading.Lock()
        self._started = False

    def send(self, obj: dict[str, Any]) -> None:
        line = f"{self._nonce} {json.dumps(obj, default=str)}\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()

    def program_started(self) -> None:
        if not self._started:
            self._started = True
            self.send({"event": "program_started"})

    def check(self, result: CheckResult) -> None:
        self.send({"event": "check", "result": result.to_json()})


def probe(exam_root: str) -> int:
    """``--probe EXAM_DIR``: import the exam's checks.py (in this child process,
    never in the sweep's) and check it against the manifest; prints the reason and
    exits 1 when it is broken."""
    from harness.errors import SweepError
    from harness.exams.exam import load_exam

    try:
        exampkg.load_checks(load_exam(Path(exam_root)))
    except SweepError as e:
        print(e.message)
        return 1
    return 0


def main(argv: list[str]) -> int:
    from harness.exams.exam import load_exam

    if argv[:1] == ["--probe"]:
        return probe(argv[1])
    sandbox.non_dumpable()
    spec = json.loads(sys.stdin.read())
    sys.stdin.close()
    chan = Channel(int(spec.pop("result_fd")), str(spec.pop("nonce")))
    try:
        exam = load_exam(Path(spec["exam_root"]))
        module = exampkg.load_checks(exam)
        ctx = context_from(spec)
        ctx.on_start = chan.program_started
        ctx.on_result = chan.check
        results = list(module.run_checks(ctx))
        out: dict[str, Any] = {"results": [r.to_json() for r in results], "notes": ctx.notes}
    except Exception as e:  # noqa: BLE001 - reported to the harness as a grading error
        tb = traceback.format_exc(limit=6)
        out = {"error": f"{type(e).__name__}: {e}", "traceback": tb[-3000:]}
    chan.send(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
