"""The check driver: runs an exam's ``checks.py`` against built binaries in a child
process, so the checks, their mock servers and the model's program share one
sandbox (one private loopback network) and a hung or crashing check cannot take
the harness with it.

    python -m harness.driver SPEC.json      # prints one JSON object on stdout

The spec names the exam directory, the task, the binaries, the scratch directory,
the run limits and environment. The answer is ``{"results": [...], "notes": {...}}``
or ``{"error": "..."}`` (a grading error: the exam's fault or ours, never the model's).
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness import proc
from harness.checkkit import CheckContext
from harness.gotool import BuildResult, BuildStatus

RESULT_MARK = "@@sweep-driver-result@@ "


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
    }


def context_from(spec: dict[str, Any]) -> CheckContext:
    rb = spec.get("race_build")
    race_build = None if rb is None else BuildResult(
        BuildStatus(rb["status"]), None if rb["binary"] is None else Path(rb["binary"]), rb["log"],
        float(rb["wall_s"]), bool(rb["race"]))
    return CheckContext(
        binary=Path(spec["binary"]),
        race_binary=None if spec["race_binary"] is None else Path(spec["race_binary"]),
        race_build=race_build,
        workdir=Path(spec["workdir"]),
        limits=proc.Limits(**spec["limits"]),
        env=dict(spec["env"]),
        task_id=spec["task_id"],
    )


def main(argv: list[str]) -> int:
    from harness.exams import load_exam
    from harness.grading import load_checks_module

    try:
        spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        exam = load_exam(Path(spec["exam_root"]))
        module = load_checks_module(exam)
        ctx = context_from(spec)
        results = list(module.run_checks(ctx))
        out: dict[str, Any] = {"results": [r.to_json() for r in results], "notes": ctx.notes}
    except Exception as e:  # noqa: BLE001 - reported to the harness as a grading error
        tb = traceback.format_exc(limit=6)
        out = {"error": f"{type(e).__name__}: {e}", "traceback": tb[-3000:]}
    sys.stdout.write(RESULT_MARK + json.dumps(out, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
