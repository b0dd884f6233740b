"""Machine settings: the environment variables that describe this machine, read in one place.

They say where things are and how this host runs code, not what a sweep measures, so
they are environment variables only (no flag, no sweep-file key) and a run stores the
snapshot it ran with (``runs.host["machine"]``):

============================ ===================================================================
``SWEEP_GO``                 the ``go`` binary or a GOROOT (else ``go`` on PATH, else a download)
``SWEEP_CACHE_DIR``          the tool's cache (Go toolchains, build cache); else
                             ``$XDG_CACHE_HOME/exam-sweep`` (``~/.cache/exam-sweep``)
``XDG_CACHE_HOME``           see ``SWEEP_CACHE_DIR``
``SWEEP_ISOLATION``          ``auto`` (default), or a sandbox level to insist on (harness.runtime.sandbox)
``SWEEP_SANDBOX_BUILD_UID``  as root: the uid builds run as (64190)
``SWEEP_SANDBOX_RUN_UID``    as root: the uid programs and check drivers run as (64191)
``SWEEP_CHECK_TIME_SCALE``   a slow machine's factor for the checks' wall-clock deadlines
``SWEEP_EXAMS_PATH``         more exam directories (``os.pathsep``-separated)
``SWEEP_LLAMA_SERVER``       the llama-server binary for ``sweep run --local``
``SWEEP_LOCAL_MODEL``        the GGUF file ``sweep run --local`` serves
============================ ===================================================================

``read()`` takes a snapshot of the process environment (or of the mapping given) each
time it is called, so a test's ``monkeypatch.setenv`` is seen; the modules that use a
setting call it where they need the value, and nowhere else reads these variables.
(``harness.generate.local_server`` and ``harness.generate.local_install`` take an explicit environment
mapping, which defaults to the process environment, because they also pass it on to
the processes they start.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_BUILD_UID = 64190
DEFAULT_RUN_UID = 64191


@dataclass(frozen=True)
class Machine:
    go: str | None = None
    cache_dir: str | None = None
    xdg_cache_home: str | None = None
    isolation: str = "auto"
    sandbox_build_uid: int = DEFAULT_BUILD_UID
    sandbox_run_uid: int = DEFAULT_RUN_UID
    check_time_scale: str | None = None      # raw text: harness.grade.grading validates it
    exams_path: str | None = None
    llama_server: str | None = None
    local_model: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


VARIABLES = {
    "go": "SWEEP_GO",
    "cache_dir": "SWEEP_CACHE_DIR",
    "xdg_cache_home": "XDG_CACHE_HOME",
    "isolation": "SWEEP_ISOLATION",
    "sandbox_build_uid": "SWEEP_SANDBOX_BUILD_UID",
    "sandbox_run_uid": "SWEEP_SANDBOX_RUN_UID",
    "check_time_scale": "SWEEP_CHECK_TIME_SCALE",
    "exams_path": "SWEEP_EXAMS_PATH",
    "llama_server": "SWEEP_LLAMA_SERVER",
    "local_model": "SWEEP_LOCAL_MODEL",
}


def _uid(env: Mapping[str, str], name: str, default: int) -> int:
    from harness.errors import ConfigError

    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise ConfigError(f"environment variable {name}={raw!r} is not a uid (a non-negative integer)") from e


def read(env: Mapping[str, str] | None = None) -> Machine:
    """The machine settings in ``env`` (default: the process environment) now; an
    empty variable counts as unset."""
    env = os.environ if env is None else env

    def text(field: str) -> str | None:
        return env.get(VARIABLES[field]) or None

    return Machine(
        go=text("go"), cache_dir=text("cache_dir"), xdg_cache_home=text("xdg_cache_home"),
        isolation=text("isolation") or "auto",
        sandbox_build_uid=_uid(env, VARIABLES["sandbox_build_uid"], DEFAULT_BUILD_UID),
        sandbox_run_uid=_uid(env, VARIABLES["sandbox_run_uid"], DEFAULT_RUN_UID),
        check_time_scale=(env.get(VARIABLES["check_time_scale"]) or "").strip() or None,
        exams_path=text("exams_path"), llama_server=text("llama_server"), local_model=text("local_model"),
    )
