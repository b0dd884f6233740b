"""The scraper-resilience exam end to end: the reference scores 10/10, the starter its
documented baseline, and each known-bad variant exactly its declared points with
exactly its declared failing checks (real Go builds, real runs against the mock).
The pure parts (eviction judge, prompt/check consistency) are tested quickly."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

from harness.exams import load_exam
from harness.grading import check_names, grade_source
from harness.validate import Verdict, expectations, source_of

EXAM_DIR = Path(__file__).resolve().parents[1] / "exams" / "scraper-resilience"
EXAM = load_exam(EXAM_DIR)
TASK = EXAM.tasks[0]
EXPECTED = expectations(EXAM, TASK)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_test_scraper_{name}", EXAM_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


eviction = _load("eviction")


# --------------------------------------------------------------------------- quick


def test_manifest_shape():
    names = [n for n, _ in check_names(EXAM, TASK)]
    assert names == ["OnlineFlow", "BuffersDuringOutage", "FlushOnReconnect", "BufferBounded", "EvictionRandom",
                     "MultipleOutageCycles", "BufferSizeZero", "BufferSizeOne", "GracefulShutdown", "RaceDetector"]
    assert TASK.points == 10 and TASK.race
    assert len(TASK.variants) >= 8
    assert TASK.baseline is not None and TASK.baseline.file == TASK.starter
    failed = set().union(*(set(v.fail) for v in TASK.variants))
    assert failed == set(names), f"no variant fails {set(names) - failed}"
    for v in [*TASK.variants, TASK.baseline]:
        assert v.points == 10 - len(v.fail), v.name


def test_prompt_states_what_the_checks_rely_on():
    checks = _load("checks")
    prompt = EXAM.render_prompt(TASK)
    assert "{{" not in prompt and "package main" in prompt
    for needle in ("-buffer-size", "uniformly at random", "0` disables buffering", "background goroutine",
                   "not queued behind the backlog", "Every outage", "SIGINT or SIGTERM", "do not cancel",
                   "No data races", "Standard library only", "204 No Content", "refuses connections",
                   "never answers", "briefly answers 503", "no duplicates", "one `-timeout` plus one second",
                   "single ```go code block"):
        assert needle in prompt, needle
    sizes = (checks.BIG_BUFFER, checks.BOUNDED_SIZE, checks.EVICT_SIZE, 0, 1, 4, 16)
    for n in sizes:
        assert f" {n}," in prompt or f" {n} " in prompt or f" {n}\n" in prompt, n


def test_eviction_judge_names_deterministic_policies():
    size, window = 24, list(range(101, 151))  # 50 batches scraped during the outage
    assert "oldest-first" in eviction.classify(window, window[-size:], size)
    assert "newest-first" in eviction.classify(window, window[: size - 1] + window[-1:], size)  # LIFO
    assert "newest-first" in eviction.classify(window, window[:size], size)                     # drop new
    assert eviction.classify(window, [], size) == "no batch from the outage survived"
    assert eviction.classify(window, window[::2][:size], size) is None


def test_uniform_random_eviction_is_never_misjudged_in_simulation():
    rng = random.Random(1234)
    size, n = 24, 50
    for incoming_may_lose in (False, True):
        for _ in range(2000):
            buf: list[int] = []
            for item in range(n):
                if len(buf) >= size:
                    k = rng.randrange(size + 1 if incoming_may_lose else size)
                    if k == size:
                        continue  # the incoming batch is the one evicted
                    buf.pop(k)
                buf.append(item)
            assert eviction.classify(list(range(n)), buf, size) is None


def test_misjudge_probability_is_below_one_in_a_million():
    checks = _load("checks")
    p = eviction.misjudge_probability(checks.EVICT_OUTAGE, checks.EVICT_SIZE)
    assert p < 1e-6
    assert eviction.misjudge_probability(checks.EVICT_OUTAGE, checks.EVICT_SIZE, incoming_may_lose=True) < 1e-6
    # the exact chain agrees with the closed form for FIFO (coupon collector, L = B + 2 draws)
    from fractions import Fraction
    from math import comb

    b, L = 8, 10
    closed = sum(Fraction((-1) ** j * comb(b, j)) * Fraction(b - j, b) ** L for j in range(b + 1))
    assert eviction.p_no_survivor(2 * b + 2, b, set(range(2 * b + 2 - L))) == closed


# --------------------------------------------------------------------------- slow


@pytest.mark.slow
@pytest.mark.parametrize("expectation", EXPECTED, ids=[e.name for e in EXPECTED])
def test_grades_exactly_as_declared(expectation, toolchain):
    grade = grade_source(EXAM, TASK, source_of(EXAM, expectation.file), toolchain)
    verdict = Verdict(expectation, grade)
    assert verdict.ok, verdict.describe()
    assert grade.max_points == 10
    mapping = grade.details["flag_mapping"]
    assert mapping["roles"]["source"][0]["flag"] == "-source"
    if expectation.name != "baseline:starter":
        assert mapping["roles"]["buffer"] == [{"flag": "-buffer-size", "unit": "count", "how": "preferred"}]
    else:
        assert "buffer" in mapping["unmapped"]


@pytest.mark.slow
def test_grades_with_a_relative_exam_path(toolchain, monkeypatch):
    """`sweep grade --exam exams/scraper-resilience` from the repository root: the
    check driver runs in the scratch directory and must still find the exam."""
    monkeypatch.chdir(EXAM_DIR.parents[1])
    exam = load_exam(Path("exams") / EXAM_DIR.name)
    assert not exam.root.is_absolute()
    task = exam.tasks[0]
    grade = grade_source(exam, task, source_of(exam, task.reference), toolchain)
    assert grade.points == 10, grade.explanation


GOOD = sorted((EXAM_DIR / "good").glob("*.go"))


@pytest.mark.slow
@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_alternative_correct_designs_score_full_marks(path, toolchain):
    """Correct answers built differently from the reference (health probes instead of
    live sends during an outage, renamed millisecond flags, a parallel flush) must
    not lose points: the checks test behaviour, not the reference's structure."""
    grade = grade_source(EXAM, TASK, path.read_text(), toolchain)
    assert grade.points == 10, [(c.name, c.detail) for c in grade.checks if not c.passed]


def test_there_are_alternative_correct_designs():
    assert len(GOOD) >= 3


@pytest.mark.slow
def test_a_program_that_does_not_start_fails_every_check_with_the_reason(toolchain):
    src = 'package main\n\nimport "os"\n\nfunc main() { os.Stderr.WriteString("boom\\n"); os.Exit(3) }\n'
    grade = grade_source(EXAM, TASK, src, toolchain)
    assert grade.points == 0 and grade.max_points == 10
    assert all(not c.passed for c in grade.checks)
    assert grade.details["flag_mapping"]["assumed_prompt_names"] is True
    assert "exited with status 3: boom" in grade.check("OnlineFlow").detail
