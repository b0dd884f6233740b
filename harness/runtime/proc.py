"""The one subprocess helper.

Every process exam-sweep starts (Go builds, model-written binaries, check drivers)
goes through ``run`` or ``spawn``:

* argument lists only, never a shell; an explicit environment;
* a new session, so the child's process group can be killed as a whole and a
  child calling ``kill(0, SIGTERM)`` cannot signal us;
* resource limits (CPU, address space, file size, open files, processes) applied
  through util-linux ``prlimit`` where present (no ``preexec_fn``, which is unsafe
  in a threaded program), else through ``preexec_fn``;
* stdout/stderr read incrementally by threads and capped: a child that writes more
  than the cap is killed and the result says so;
* a wall-clock deadline, then the whole process group is killed; stopping a
  long-running child escalates SIGINT -> SIGTERM -> SIGQUIT (goroutine dump) ->
  SIGKILL;
* the process group is killed before the leader is reaped, so no pid reuse race;
* default signal dispositions and an empty signal mask in every child, whatever
  this process inherited (``sweep run &`` from dash ignores SIGINT and SIGQUIT, and
  ignored signals survive ``exec``): see ``signal_reset_prefix``;
* whose fault an overrun is: a child killed at the wall limit is measured first
  (CPU time, time spent waiting for a CPU, stopped processes) over its whole process
  tree, so that a grader can tell a program that stopped itself or sat waiting from
  one that was working on a machine too slow for it (``ProcResult.overrun_is_programs``).
"""

from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MiB = 1024 * 1024
GiB = 1024 * MiB

# Whose fault an overrun is (``ProcResult.overrun_is_programs``), in shares of the wall
# time the run was given, summed over every process and thread of its tree:
# - WORKING_CPU_SHARE: CPU time at or above it (a quarter of one core) is a program at work;
# - STARVED_SHARE: time spent runnable on a run queue, waiting for a CPU others held, at or
#   above it (with little CPU) is a program the machine did not serve.
WORKING_CPU_SHARE = 0.25
STARVED_SHARE = 0.5


@dataclass(frozen=True)
class Limits:
    """Bounds for one child process (and everything it starts)."""

    wall_s: float = 10.0
    cpu_s: int | None = None               # soft limit; hard = soft + 1 (Go ignores SIGXCPU)
    address_space: int | None = None       # bytes; Go needs >= ~1 GiB of address space
    file_size: int | None = 64 * MiB       # largest file the child may write
    open_files: int | None = 1024
    processes: int | None = None           # RLIMIT_NPROC: per uid, ignored for root
    output_bytes: int = 1 * MiB            # per stream; more gets the child killed

    def prlimit_args(self) -> list[str]:
        args: list[str] = []
        if self.cpu_s is not None:
            args.append(f"--cpu={self.cpu_s}:{self.cpu_s + 1}")
        if self.address_space is not None:
            args.append(f"--as={self.address_space}:{self.address_space}")
        if self.file_size is not None:
            args.append(f"--fsize={self.file_size}:{self.file_size}")
        if self.open_files is not None:
            args.append(f"--nofile={self.open_files}:{self.open_files}")
        if self.processes is not None:
            args.append(f"--nproc={self.processes}:{self.processes}")
        args.append("--core=0:0")
        return args

    def apply_in_child(self) -> None:
        """preexec_fn fallback where util-linux prlimit is not installed."""
        pairs = [
            (resource.RLIMIT_CPU, None if self.cpu_s is None else (self.cpu_s, self.cpu_s + 1)),
            (resource.RLIMIT_AS, None if self.address_space is None else (self.address_space,) * 2),
            (resource.RLIMIT_FSIZE, None if self.file_size is None else (self.file_size,) * 2),
            (resource.RLIMIT_NOFILE, None if self.open_files is None else (self.open_files,) * 2),
            (resource.RLIMIT_NPROC, None if self.processes is None else (self.processes,) * 2),
            (resource.RLIMIT_CORE, (0, 0)),
        ]
        for which, value in pairs:
            if value is not None:
                try:
                    resource.setrlimit(which, value)
                except (ValueError, OSError):
                    pass  # e.g. RLIMIT_AS cannot be lowered on macOS


@dataclass(frozen=True)
class ProcResult:
    argv: tuple[str, ...]
    returncode: int | None          # None when killed by us before it exited
    stdout: bytes
    stderr: bytes
    wall_s: float
    timed_out: bool = False
    output_limited: bool = False    # a stream exceeded Limits.output_bytes
    stdout_bytes: int = 0           # total bytes the child wrote, including dropped ones
    stderr_bytes: int = 0
    # Measured over the child's process tree when our wall limit killed it (None otherwise):
    cpu_s: float | None = None      # CPU time (user + system, reaped descendants included)
    runnable_s: float | None = None # time its live threads spent waiting on a run queue for a CPU
    stopped: bool = False           # a process of the tree was stopped (state T/t) at the kill

    @property
    def signal(self) -> int | None:
        """The signal that ended the child, if one did."""
        rc = self.returncode
        if rc is not None and rc < 0:
            return -rc
        return None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.output_limited

    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")

    def overrun_is_programs(self, *, own_limit: bool = False) -> str | None:
        """Whose fault a run killed at our wall limit is: the reason it is the
        program's own doing, or None when it is ours (the machine was too slow).

        The rule, like isolate comparing CPU time with wall time, over every process
        of the run's tree measured at the kill:

        * a process stopped (state T or t: it sent itself SIGSTOP, or a tracer of its
          own stopped it; we never stop a program) -> the program's;
        * CPU time below ``WORKING_CPU_SHARE`` of one core over the wall time, and
          less than ``STARVED_SHARE`` of it spent waiting for a CPU -> the program's:
          it was waiting (sleeping, blocked), not working;
        * waiting for a CPU for most of the time with little CPU (the machine was
          overloaded by others) -> ours;
        * working (CPU at or above the share) -> ours when the run is one that ends by
          itself within our limit unless the machine is too slow (a check driver, a
          test binary whose own ``-test.timeout`` fires first); the program's when our
          limit is the program's own time limit (``own_limit``: a stdio case), where
          working too long is what a time limit is for.

        Not measured (the run was not killed at the wall limit, or /proc is missing):
        None."""
        if not self.timed_out or self.cpu_s is None:
            return None
        if self.stopped:
            return "stopped itself (SIGSTOP)"
        cpu, wall, waited = self.cpu_s, max(self.wall_s, 1e-9), self.runnable_s or 0.0
        if cpu >= WORKING_CPU_SHARE * wall:
            return f"used {cpu:.1f} s of CPU in {wall:.1f} s: it was working past its time limit" if own_limit else None
        if waited >= STARVED_SHARE * wall:
            return None
        return f"used {cpu:.1f} s of CPU in {wall:.1f} s: it was waiting, not working"

    def describe_overrun(self) -> str:
        """What was measured at the kill, for a message that blames us."""
        if self.cpu_s is None:
            return "its CPU time could not be measured"
        waited = f", {self.runnable_s:.1f} s waiting for a CPU" if self.runnable_s else ""
        return f"it used {self.cpu_s:.1f} s of CPU in {self.wall_s:.1f} s{waited}"

    def describe_exit(self) -> str:
        if self.timed_out:
            return f"did not finish within {self.wall_s:.1f}s (killed)"
        if self.output_limited:
            return "wrote more output than allowed (killed)"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"killed by {name}"
        return f"exited with status {self.returncode}"


_PRLIMIT = shutil.which("prlimit") if os.name == "posix" else None


# -- signals ------------------------------------------------------------------------
# Signals ignored by this process survive exec in every child, and a child inherits
# the spawning thread's signal mask. Popen's restore_signals resets only SIGPIPE and
# SIGXFSZ (which Python itself ignores), so a harness started with SIGINT ignored
# (``sweep run &`` from dash) would start every program with SIGINT ignored. This
# wrapper, put in front of a command only when needed, resets every catchable signal
# to its default and clears the mask, then executes the command (same pid).
_RESET_SIGNALS = (
    "import os, signal, sys\n"
    "for s in signal.valid_signals():\n"
    "    try:\n"
    "        signal.signal(s, signal.SIG_DFL)\n"
    "    except (OSError, ValueError, RuntimeError):\n"
    "        pass\n"
    "signal.pthread_sigmask(signal.SIG_SETMASK, ())\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)
_RESTORED_BY_POPEN = {getattr(signal, n) for n in ("SIGPIPE", "SIGXFSZ", "SIGXFZ") if hasattr(signal, n)}


def inherited_signals() -> tuple[set[int], set[int]]:
    """(signals ignored by this process, signals blocked in this thread), leaving out
    those ``Popen(restore_signals=True)`` resets anyway."""
    if os.name != "posix":
        return set(), set()
    ignored = set()
    for s in signal.valid_signals():
        if s in _RESTORED_BY_POPEN:
            continue
        try:
            if signal.getsignal(s) == signal.SIG_IGN:
                ignored.add(int(s))
        except (OSError, ValueError):
            continue
    blocked = {int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, ())}
    return ignored, blocked


def signal_reset_prefix() -> list[str]:
    """What to put in front of a command so that it starts with default signal
    dispositions and an empty mask: nothing when this process (and the calling
    thread) has none to pass on, the usual case; else a small Python wrapper."""
    ignored, blocked = inherited_signals()
    if not ignored and not blocked:
        return []
    return [sys.executable, "-I", "-S", "-c", _RESET_SIGNALS]


# -- whose fault an overrun is ----------------------------------------------------------
@dataclass(frozen=True)
class Usage:
    """What a process tree did, measured at one moment (``measure_tree``)."""

    cpu_s: float          # user + system time of its live processes and of the descendants they reaped
    runnable_s: float     # time its live threads spent on a run queue waiting for a CPU
    stopped: bool         # a thread was in state T (stopped) or t (stopped by a tracer)
    processes: int


_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(path: str) -> list[str] | None:
    """The fields of a /proc stat file after the command name (state first)."""
    try:
        with open(path, "rb") as f:
            raw = f.read().decode("ascii", errors="replace")
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def measure_tree(leader: int) -> Usage | None:
    """CPU time, run-queue wait and stopped state of ``leader`` and every process
    below it (by parent pid) or in its process group; None without /proc. Under
    bwrap the tree holds the sandbox's whole PID namespace: nothing escapes it."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    parent: dict[int, int] = {}
    fields: dict[int, list[str]] = {}
    for name in names:
        if not name.isdigit():
            continue
        f = _stat_fields(f"/proc/{name}/stat")
        if f is None or len(f) < 15:
            continue
        pid = int(name)
        fields[pid] = f
        parent[pid] = int(f[1])
    if leader not in fields:
        return None
    members = {pid for pid, f in fields.items() if int(f[2]) == leader} | {leader}
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    todo = list(members)
    while todo:
        for c in children.get(todo.pop(), ()):
            if c not in members:
                members.add(c)
                todo.append(c)
    ticks = 0
    runnable_ns = 0
    stopped = False
    for pid in members:
        f = fields[pid]
        ticks += sum(int(x) for x in f[11:15])          # utime stime cutime cstime
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            tids = []
        for tid in tids:
            st = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
            if st and st[0] in ("T", "t"):
                stopped = True
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as sf:
                    runnable_ns += int(sf.read().split()[1])
            except (OSError, ValueError, IndexError):
                continue
        if f[0] in ("T", "t"):
            stopped = True
    return Usage(ticks / _CLK_TCK, runnable_ns / 1e9, stopped, len(members))


class Capture:
    """Reads one pipe to EOF in a thread, keeping at most ``cap`` bytes (closes it at EOF)."""

    def __init__(self, stream: IO[bytes], cap: int, on_overflow: Callable[[], None]) -> None:
        self._stream = stream
        self._cap = cap
        self._on_overflow = on_overflow
        self._chunks: list[bytes] = []
        self._kept = 0
        self.total = 0
        self.overflowed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        fd = self._stream.fileno()
        try:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                with self._lock:
                    self.total += len(chunk)
                    room = self._cap - self._kept
                    if room > 0:
                        piece = chunk[:room]
                        self._chunks.append(piece)
                        self._kept += len(piece)
                    if self.total > self._cap and not self.overflowed:
                        self.overflowed = True
                        self._on_overflow()
        finally:
            try:
                self._stream.close()
            except OSError:
                pass

    def data(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class Process:
    """A running child in its own session. Use as a context manager: on exit the
    whole process group is killed and reaped, whatever happened."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | os.PathLike[str] | None = None,
        limits: Limits = Limits(),
        stdin: bytes | None = None,
        pass_fds: Sequence[int] = (),
        target: Callable[[], int | None] | None = None,
        wrapper_status: bool = False,
    ) -> None:
        """``pass_fds``: descriptors the child inherits (nothing else is).
        ``target``: where signals go when the leader is a sandbox wrapper (returns the
        pid of the program inside, or None if it is gone). ``wrapper_status``: the
        leader reports a child killed by signal N as exit status 128+N (bwrap does);
        map it back to -N."""
        self.argv = tuple(str(a) for a in argv)
        self.limits = limits
        self._target = target
        self._wrapper_status = wrapper_status
        full = [*signal_reset_prefix(), *self.argv]
        preexec = None
        if _PRLIMIT:
            full = [_PRLIMIT, *limits.prlimit_args(), "--", *full]
        else:
            preexec = limits.apply_in_child
        self._started = time.monotonic()
        self._popen = subprocess.Popen(  # noqa: S603 - argument list, explicit env
            full,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=None if cwd is None else str(cwd),
            start_new_session=True,
            preexec_fn=preexec,  # noqa: PLW1509 - only without prlimit
            close_fds=True,
            pass_fds=tuple(pass_fds),
        )
        self.pid = self._popen.pid
        self.output_limited = False
        self.timed_out = False
        self.usage: Usage | None = None      # measured by ``expire``
        self._returncode: int | None = None
        assert self._popen.stdout is not None and self._popen.stderr is not None   # both are PIPE
        self._out = Capture(self._popen.stdout, limits.output_bytes, self._overflow)
        self._err = Capture(self._popen.stderr, limits.output_bytes, self._overflow)
        if stdin is not None:
            threading.Thread(target=self._feed, args=(stdin,), daemon=True).start()

    # -- input/output -------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        assert self._popen.stdin is not None
        try:
            self._popen.stdin.write(data)
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                self._popen.stdin.close()
            except OSError:
                pass

    def _overflow(self) -> None:
        self.output_limited = True
        self.kill_group()

    def stdout_so_far(self) -> bytes:
        if self._returncode is not None:
            self._out.join(2.0)   # exited: what it wrote last may still be in the pipe
        return self._out.data()

    def stderr_so_far(self) -> bytes:
        if self._returncode is not None:
            self._err.join(2.0)
        return self._err.data()

    # -- lifecycle ----------------------------------------------------------
    def _exited(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for the leader to exit, without reaping it."""
        if self._returncode is not None:
            return True
        deadline = time.monotonic() + max(0.0, timeout)
        pidfd = None
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(self.pid)
            except OSError:
                pidfd = None
        try:
            while True:
                try:
                    info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:
                    return True
                if info is not None:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if pidfd is not None:
                    select.select([pidfd], [], [], left)
                else:
                    time.sleep(min(0.005, left))
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _reap(self) -> int:
        if self._returncode is None:
            self.kill_group()  # leftovers in the group die before the pid can be reused
            rc = self._popen.wait()
            if self._wrapper_status and 128 < rc < 128 + 65:
                rc = -(rc - 128)
            self._returncode = rc
        return self._returncode

    def poll(self) -> int | None:
        if self._exited(0):
            return self._reap()
        return None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for exit; returns the exit status, or None if still running."""
        if self._exited(1e9 if timeout is None else timeout):
            return self._reap()
        return None

    def send_signal(self, sig: int) -> None:
        if self._returncode is None:
            pid = self.pid if self._target is None else self._target()
            if pid is None:
                return
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def expire(self) -> None:
        """Our wall limit passed: measure what the child's process tree did (CPU
        time, run-queue wait, stopped processes), then kill it. The result carries
        the measurement (``ProcResult.overrun_is_programs``)."""
        if self._returncode is None and self.usage is None:
            self.usage = measure_tree(self.pid)
        self.timed_out = True
        self.kill_group()

    def kill_group(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(
        self,
        *,
        first: int = signal.SIGINT,
        grace_s: float = 5.0,
        term_s: float = 1.0,
        quit_s: float = 1.0,
    ) -> tuple[int | None, str]:
        """Ask the child to stop, escalating. Returns (status, how) where ``how`` is
        the signal that finally ended it: 'exited', 'SIGINT', 'SIGTERM', 'SIGQUIT',
        'SIGKILL'."""
        if self._exited(0):
            return self._reap(), "exited"
        steps = [(first, grace_s), (signal.SIGTERM, term_s), (signal.SIGQUIT, quit_s)]
        for sig, wait_s in steps:
            self.send_signal(sig)
            if self._exited(wait_s):
                return self._reap(), signal.Signals(sig).name
        self.kill_group()
        self._exited(5.0)
        return self._reap(), "SIGKILL"

    def result(self) -> ProcResult:
        """Reap (if not yet), collect output, and describe the run."""
        rc = self._reap()
        self._out.join(2.0)
        self._err.join(2.0)
        return ProcResult(
            argv=self.argv,
            returncode=None if (self.timed_out or self.output_limited) and rc < 0 else rc,
            stdout=self._out.data(),
            stderr=self._err.data(),
            wall_s=time.monotonic() - self._started,
            timed_out=self.timed_out,
            output_limited=self.output_limited,
            stdout_bytes=self._out.total,
            stderr_bytes=self._err.total,
            cpu_s=None if self.usage is None else round(self.usage.cpu_s, 3),
            runnable_s=None if self.usage is None else round(self.usage.runnable_s, 3),
            stopped=self.usage is not None and self.usage.stopped,
        )

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill_group()
        if self._returncode is None:
            self._exited(5.0)
            self._reap()
        self._out.join(2.0)
        self._err.join(2.0)


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str] | None = None,
    limits: Limits = Limits(),
    stdin: bytes | None = None,
    pass_fds: Sequence[int] = (),
    target: Callable[[], int | None] | None = None,
    wrapper_status: bool = False,
) -> Process:
    """Start a child and return at once; the caller stops it (use ``with``)."""
    return Process([str(a) for a in argv], env=env, cwd=cwd, limits=limits, stdin=stdin, pass_fds=pass_fds,
                   target=target, wrapper_status=wrapper_status)


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str] | None = None,
    limits: Limits = Limits(),
    stdin: bytes | None = None,
    pass_fds: Sequence[int] = (),
    wrapper_status: bool = False,
) -> ProcResult:
    """Run a child to completion within ``limits.wall_s``; never raises for the
    child's own failures (they are in the result)."""
    with spawn(argv, env=env, cwd=cwd, limits=limits, stdin=stdin, pass_fds=pass_fds,
               wrapper_status=wrapper_status) as p:
        if p.wait(limits.wall_s) is None:
            p.expire()
        return p.result()


def minimal_env(extra: Mapping[str, str] | None = None, *, home: Path | None = None) -> dict[str, str]:
    """A scrubbed environment for untrusted code: no API keys, no user HOME."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    if home is not None:
        env["HOME"] = str(home)
        env["TMPDIR"] = str(home)
    if extra:
        env.update(extra)
    return env
