"""Lint (ruff) and type-check (mypy), so `python -m pytest` is the one command that
checks everything. Both tools come with the `dev` extra; their settings are in
pyproject.toml. Without them (an old dev install) the tests skip, unless CI
(SWEEP_E2E_REQUIRED=1) where a missing tool fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None:
        if os.environ.get("SWEEP_E2E_REQUIRED") == "1":
            pytest.fail(f"{name} is not installed (pip install '.[dev]')")
        pytest.skip(f"{name} is not installed (pip install '.[dev]')")
    return exe


def test_ruff():
    r = subprocess.run([_tool("ruff"), "check", "--no-cache", "--output-format", "concise", "."],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy():
    with tempfile.TemporaryDirectory(prefix="sweep-mypy-") as cache:
        r = subprocess.run([_tool("mypy"), "--cache-dir", cache], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
