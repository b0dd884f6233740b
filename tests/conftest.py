"""Shared fixtures: the real Go toolchain (prewarmed once per machine)."""

from __future__ import annotations

import pytest

from harness import gotool, sandbox


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
