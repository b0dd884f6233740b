"""The writer's lock on a results directory: one writing process at a time.

Every command that writes to a results directory (``sweep run``, ``sweep regrade``,
``sweep demo --out``) holds an exclusive ``flock`` on ``DIR/sweep.lock`` while its
store is open, and writes its pid there. A second writer is refused at once with
one line naming the holder's pid; commands that only read (``report``, ``logs``,
``compare``) take no lock. The kernel drops the lock when the holder's process
ends, however it ends (``kill -9`` included), so a stale lock file is harmless.

Inside one process the lock is shared: several ``Store`` objects on one directory
(threads, tests) count references to the one lock.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from harness.errors import DirectoryInUse, StoreError

LOCK_NAME = "sweep.lock"

_held: dict[Path, list[int]] = {}     # resolved directory -> [fd, references]
_guard = threading.Lock()


def acquire(directory: Path) -> Path:
    """Take (or share, within this process) the writer's lock on ``directory``;
    returns the key to ``release`` it. Raises StoreError naming the pid of the
    process that holds it."""
    key = Path(directory).resolve()
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return key
        path = key / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise StoreError(f"cannot create the lock file {path}: {e.strerror}",
                             hint="the results directory must be writable to write results; read commands "
                                  "(report, logs, compare) work without it") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _holder(fd)
            os.close(fd)
            raise DirectoryInUse(f"results directory {key} is in use by another exam-sweep process ({holder})",
                             hint="wait for it to finish, or write to another --out directory; "
                                  "`sweep report` can read it meanwhile") from e
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:      # a full disk (ENOSPC), a quota: the lock is no use without its pid
            os.close(fd)
            raise StoreError(f"cannot write the lock file {path}: {e.strerror}",
                             hint="free some space on the results directory's disk, or pick another --out") from e
        _held[key] = [fd, 1]
        return key


def release(key: Path) -> None:
    with _guard:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _held[key]
            os.close(entry[0])       # drops the flock


def _holder(fd: int, wait_s: float = 0.5) -> str:
    """The holder's pid as it wrote it. A holder writes its pid right after it takes
    the lock, so a refusal in between waits a moment (``wait_s`` at most) to name it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            text = os.pread(fd, 64, 0).decode("ascii", errors="replace").strip()
        except OSError:
            text = ""
        if text.isdigit():
            return f"pid {text}"
        if time.monotonic() >= deadline:
            return "pid unknown: it is starting"
        time.sleep(0.01)
