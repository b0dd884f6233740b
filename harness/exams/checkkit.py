"""What an exam's ``checks.py`` gets to work with.

An exam with ``grader = "checks"`` ships a ``checks.py`` that defines::

    CHECKS: list[tuple[str, float]]          # (check name, points), in report order;
                                             # the points sum to the task's points
    def run_checks(ctx: CheckContext) -> list[CheckResult]

``run_checks`` returns exactly one ``CheckResult`` per name in ``CHECKS``. It runs
the built binary (and the ``-race`` build when the task asks for one) through
``ctx.spawn`` / ``ctx.run``, which apply the exam's limits and the scrubbed
environment, and always kill the whole process group. A check the checks could not
run because the binary crashed or its flags could not be mapped is ``NOT_RUN`` or
``FAIL`` with the reason; an exception escaping ``run_checks`` is a grading error
(our fault), never a model failure.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.results import CheckResult, CheckStatus
from harness.runtime import proc, sandbox
from harness.runtime.gotool import BuildResult

# The one variable the check driver receives from the grader's environment: wall-clock
# deadlines are stretched by it on a slow machine (harness.exams.kit.timing).
TIME_SCALE_ENV = "SWEEP_CHECK_TIME_SCALE"

__all__ = [
    "CheckContext",
    "CheckResult",
    "CheckStatus",
    "poll_until",
]


@dataclass
class CheckContext:
    binary: Path                         # the normal build
    race_binary: Path | None             # the -race build, when the task asks for one and it built
    race_build: BuildResult | None       # why race_binary is None, if it is
    workdir: Path                        # scratch directory of this grading (deleted afterwards)
    limits: proc.Limits                  # bounds for each run of the binary
    env: dict[str, str]                  # scrubbed environment for the binary
    task_id: str = ""
    notes: dict[str, object] = field(default_factory=dict)  # stored with the grade (e.g. flag mapping)
    # How each program is started (the driver sets it: a sandbox of its own under bwrap);
    # None starts it directly (tests of exam code outside a driver).
    inner: sandbox.Inner | None = None
    # Called once per check with its result as soon as it is known (the driver
    # streams it, so a check finished before the program killed the driver keeps it).
    on_result: Callable[[CheckResult], None] | None = None
    on_start: Callable[[], None] | None = None    # called before every program start
    _runs: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def _argv(self, args: Sequence[str], race: bool) -> list[str]:
        binary = self.race_binary if race else self.binary
        if binary is None:
            raise RuntimeError("no -race binary was built for this task")
        return [str(binary), *args]

    def _env(self, race: bool, extra: Mapping[str, str] | None) -> dict[str, str]:
        env = dict(self.env)
        if race:
            env["GORACE"] = "atexit_sleep_ms=0 halt_on_error=0"
        if extra:
            env.update(extra)
        return env

    def spawn(
        self,
        args: Sequence[str],
        *,
        race: bool = False,
        env: Mapping[str, str] | None = None,
        limits: proc.Limits | None = None,
    ) -> proc.Process:
        """Start the binary with ``args``; use as a context manager."""
        return self._start(self._argv(args, race), self._env(race, env), limits or self.limits, None)

    def _start(self, argv: list[str], env: dict[str, str], limits: proc.Limits, stdin: bytes | None) -> proc.Process:
        if self.on_start is not None:
            self.on_start()
        cwd = self.workdir / f"run-{next(self._runs)}"   # each program its own (private) working directory
        env = {**env, "HOME": str(cwd), "TMPDIR": str(cwd)}
        if self.inner is None:
            cwd.mkdir(exist_ok=True)
            return proc.spawn(argv, env=env, cwd=cwd, limits=limits, stdin=stdin)
        p = self.inner.spawn(argv, env=env, cwd=cwd, limits=limits, stdin=stdin)
        assert isinstance(p, proc.Process)
        return p

    def report(self, result: CheckResult) -> None:
        """Tell the harness a check's result as soon as it is final (optional; the
        list ``run_checks`` returns still decides)."""
        if self.on_result is not None:
            self.on_result(result)

    def run(
        self,
        args: Sequence[str],
        *,
        race: bool = False,
        env: Mapping[str, str] | None = None,
        limits: proc.Limits | None = None,
        stdin: bytes | None = None,
    ) -> proc.ProcResult:
        """Run the binary to completion (bounded by the limits' wall time)."""
        lim = limits or self.limits
        with self._start(self._argv(args, race), self._env(race, env), lim, stdin) as p:
            if p.wait(lim.wall_s) is None:
                p.timed_out = True
                p.kill_group()
            return p.result()


def poll_until(
    predicate: Callable[[], bool],
    timeout_s: float,
    *,
    interval_s: float = 0.01,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passes (or ``alive``
    turns false). Checks poll instead of sleeping fixed amounts, so they are as fast
    as the program allows and tolerant of a loaded machine."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline or (alive is not None and not alive()):
            return predicate()
        time.sleep(interval_s)

