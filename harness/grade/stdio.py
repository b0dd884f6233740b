"""The ``stdio`` grader: hidden cases, output compared.

Checks ``build`` (1 point), ``runs`` (1 point: the first case exits 0 within its
time limit) and one ``case:<name>`` check per hidden case, the rest of the task's
points split evenly over them (``Task.declared_checks``). A case passes when the
program exits 0 within the limit and its stdout equals the expected text after
trimming trailing whitespace on each line and trailing blank lines. Cases run
concurrently, each in a sandbox of its own with a private size-limited HOME.

A case killed at its time limit is the program's failure, and its detail says
which (``ProcResult.overrun_is_programs``): it stopped itself, it was waiting (little
CPU), or it was working past the limit. Only a program that spent the time waiting
for a CPU the machine did not give it (little CPU, mostly runnable) is ours: a
grading error, retried once at the end of the sweep.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

from harness.errors import GradingError
from harness.exams.exam import Case, Exam, Task
from harness.grade.graders import GradingRun, run_limits
from harness.results import CheckResult
from harness.runtime import proc, sandbox


def normalize_output(text: str) -> str:
    """Trailing whitespace of each line and trailing blank lines do not count."""
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines)


class StdioGrader:
    kind: ClassVar[str] = "stdio"

    def needs_race(self, task: Task) -> bool:
        return False

    def preflight(self, exam: Exam) -> None:
        return None   # all data: validated when the manifest loads

    def score(self, run: GradingRun) -> tuple[list[CheckResult], dict[str, object]]:
        return _stdio_checks(run.exam, run.task, run.binary, run.workdir, run.names, run.box, run.group), {}


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
    limits = run_limits(exam)
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
    for case, res in runs:
        if res.timed_out and res.overrun_is_programs(own_limit=True) is None:
            raise GradingError(f"case {case.name} ran past its {limits.wall_s:.0f}s limit waiting for a CPU the "
                               f"machine did not give it ({res.describe_overrun()}): machine overloaded?")
    first_case, first = runs[0]
    if first.returncode == 0 and not first.timed_out and not first.output_limited:
        results.append(CheckResult.passing("runs", points["runs"]))
    else:
        results.append(CheckResult.failing(
            "runs", points["runs"], f"case {first_case.name}: {_exit_detail(first)}{_stderr_tail(first)}"))
    for case, res in runs:
        name = f"case:{case.name}"
        if not res.ok:
            results.append(CheckResult.failing(name, points[name], _exit_detail(res) + _stderr_tail(res)))
            continue
        got = normalize_output(res.stdout_text())
        want = normalize_output(case.expect_stdout)
        if got == want:
            results.append(CheckResult.passing(name, points[name]))
        else:
            results.append(CheckResult.failing(name, points[name], _diff_hint(want, got)))
    return results


def _exit_detail(res: proc.ProcResult) -> str:
    """How the case ended; for a case killed at its time limit, also why it is the
    program's doing (it stopped itself, waited, or worked past the limit)."""
    why = res.overrun_is_programs(own_limit=True) if res.timed_out else None
    return res.describe_exit() + (f": {why}" if why else "")


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
