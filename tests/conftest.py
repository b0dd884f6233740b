"""Shared fixtures: the real Go toolchain (prewarmed once per machine)."""

from __future__ import annotations

import pytest

from harness import gotool


@pytest.fixture(scope="session")
def toolchain() -> gotool.Toolchain:
    tc = gotool.resolve()
    tc.prewarm(race=tc.race_available())
    return tc
