"""Shared fixtures: the real Go toolchain (prewarmed once per machine), each
isolation level, and an environment of the test's own for every test."""

from __future__ import annotations

import os

import pytest

from harness.runtime import gotool, sandbox

# What a test may inherit of SWEEP_* from the shell that runs pytest: the choice of
# Go toolchain and llama-server for the machine, and CI's demand that the e2e tests
# run. Everything else (isolation, config, endpoints, models, time scale, ...) a test
# sets itself, or it has the default.
KEPT_SETTINGS = ("SWEEP_GO", "SWEEP_LLAMA_SERVER", "SWEEP_E2E_REQUIRED")

# The Go build cache is content-addressed and safe to share: every test session uses
# the machine's (read once, before any test changes the environment), so the
# standard library is compiled once per machine, not once per test.
_GO_CACHE_ROOT = gotool.cache_root()


@pytest.fixture(autouse=True)
def _own_environment(monkeypatch, tmp_path_factory) -> None:
    """No SWEEP_* setting leaks in from the developer's shell, and HOME and the
    XDG caches point at a temporary directory (nothing a test does reads or writes
    the user's own files); SWEEP_CACHE_DIR names the machine's shared Go cache."""
    for key in list(os.environ):
        if key.startswith("SWEEP_") and key not in KEPT_SETTINGS:
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("SWEEP_CACHE_DIR", str(_GO_CACHE_ROOT))
    sandbox.reset()   # the isolation level is chosen again under this environment


@pytest.fixture(scope="session")
def toolchain() -> gotool.Toolchain:
    tc = gotool.resolve()
    tc.prewarm(race=tc.race_available())
    return tc


@pytest.fixture(params=["bwrap", "plain"])
def isolation(request, monkeypatch) -> sandbox.Sandbox:
    """Each isolation level in turn (skipped where it cannot work here)."""
    monkeypatch.setenv("SWEEP_ISOLATION", request.param)
    sandbox.reset()
    try:
        box = sandbox.current()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"{request.param} not available here: {e}")
    yield box
    sandbox.reset()
