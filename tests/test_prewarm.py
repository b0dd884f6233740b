"""The Go standard-library prewarm: one cache per Go version (shared by every
virtualenv), the -race library compiled only for exams that build with -race, and
progress while it compiles."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import api
from harness.exams.exam import find_exam
from harness.runtime import gotool


def _fake_go(dir: Path, version: str) -> Path:
    go = dir / "bin" / "go"
    go.parent.mkdir(parents=True)
    go.write_text(f"#!/bin/sh\ncase \"$1\" in\n  version) echo 'go version {version} linux/amd64';;\n"
                  f"  env) echo '{dir}';;\nesac\n")
    go.chmod(0o755)
    return go


def test_the_cache_is_keyed_by_the_go_version_not_the_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_CACHE_DIR", str(tmp_path / "cache"))
    a = gotool._resolve(str(_fake_go(tmp_path / "venv-a", "go1.27.3")))
    b = gotool._resolve(str(_fake_go(tmp_path / "venv-b", "go1.27.3")))
    c = gotool._resolve(str(_fake_go(tmp_path / "venv-c", "go1.28.0")))
    assert a.go != b.go
    assert a.cache == b.cache == tmp_path / "cache" / "gocache-go1.27.3"
    assert c.cache == tmp_path / "cache" / "gocache-go1.28.0"


class FakeToolchain:
    version = "go1.27.3"
    source = "test"
    go = Path("/nonexistent/go")

    def __init__(self) -> None:
        self.prewarmed: list[bool] = []

    def race_available(self) -> bool:
        return True

    def is_prewarmed(self, *, race: bool = True) -> bool:
        return False

    def prewarm(self, *, race: bool = True, progress: object = None) -> None:
        self.prewarmed.append(race)


@pytest.mark.parametrize("exam_ids, race", [
    (["go-basics"], False),                          # stdio exam: never built with -race
    (["scraper-resilience"], True),                  # a checks task with race = true
    (["go-basics", "scraper-resilience"], True),
    (None, True),                                    # unknown exams (regrade): any might
])
def test_the_race_library_is_compiled_only_for_exams_that_need_it(monkeypatch, exam_ids, race):
    tc = FakeToolchain()
    monkeypatch.setattr(gotool, "resolve", lambda: tc)
    exams = None if exam_ids is None else [find_exam(e) for e in exam_ids]
    assert api.toolchain(exams) is tc
    assert tc.prewarmed == [race]


def test_still_going_reports_while_the_block_runs_and_stops_after():
    said: list[str] = []
    with gotool._still_going(said.append, "still compiling the Go standard library", 0.05):
        time.sleep(0.28)
    n = len(said)
    time.sleep(0.15)
    assert 3 <= n == len(said)
    assert said[0].startswith("  still compiling the Go standard library (") and said[0].endswith(" s so far)")


def test_prewarm_of_a_prewarmed_cache_says_nothing_and_builds_nothing(tmp_path):
    cache = tmp_path / "gocache-go1.27.3"
    tc = gotool.Toolchain(go=Path("/nonexistent/go"), goroot=tmp_path, version="go1.27.3", source="test",
                          cache=cache)
    cache.mkdir()
    for mode in (False, True):
        tc.prewarm_marker(mode).write_text("go1.27.3\n")
    said: list[str] = []
    tc.prewarm(race=True, progress=said.append)   # a build would fail: /nonexistent/go
    assert said == [] and tc.is_prewarmed(race=True)


def test_prewarm_announces_what_it_compiles_and_how_long_it_took_here(tmp_path):
    tc = gotool.Toolchain(go=tmp_path / "no-go", goroot=tmp_path, version="go1.27.3", source="test",
                          cache=tmp_path / "gocache-go1.27.3")
    said: list[str] = []
    with pytest.raises(gotool.ToolchainError, match="prewarming the Go build cache failed"):
        tc.prewarm(race=False, progress=said.append)
    assert said == [f"Compiling the Go standard library into {tc.cache} (once per Go version; about 1 minute on "
                    "2 idle cores, longer on a busy machine)..."]
    assert not tc.prewarm_marker(False).exists()
