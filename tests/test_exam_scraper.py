"""The scraper-resilience exam end to end: the reference scores 10/10, the starter its
documented baseline, and each known-bad variant exactly its declared points with
exactly its declared failing checks (real Go builds, real runs against the mock).
The pure parts (eviction judge, prompt/check consistency) are tested quickly."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.exams import package as exampkg
from harness.exams.exam import load_exam
from harness.grade.grading import check_names, grade_source
from harness.grade.validate import Verdict, expectations, source_of

EXAM_DIR = Path(__file__).resolve().parents[1] / "exams" / "scraper-resilience"
EXAM = load_exam(EXAM_DIR)
TASK = EXAM.tasks[0]
EXPECTED = expectations(EXAM, TASK)


def _load(name: str):
    return exampkg.load_module(EXAM, name)  # the exam's Python is a package (relative imports)


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
                   "single ```go code block", "its own POST", "never several batches in one request",
                   "are not sent again", "in the middle of a flush", "many outages", "longer than `-timeout`"):
        assert needle in prompt, needle
    sizes = (checks.BIG_BUFFER, checks.BOUNDED_SIZE, checks.EVICT_SIZE, 0, 1, 4, 16)
    for n in sizes:
        assert f" {n}," in prompt or f" {n} " in prompt or f" {n}\n" in prompt, n


def _window_survivors(policy: str, n: int, size: int, rng: random.Random) -> list[int]:
    """Positions 0..n-1 (oldest first) surviving one outage under an eviction policy."""
    buf: list[int] = []
    for item in range(n):
        if len(buf) >= size:
            k = {"uniform": lambda: rng.randrange(len(buf)),
                 "older-half": lambda: rng.randrange(max(1, len(buf) // 2)),
                 "oldest": lambda: 0,
                 "newest": lambda: len(buf) - 1}[policy]()
            buf.pop(k)
        buf.append(item)
    return buf


def _judge(policy: str, rng: random.Random, windows: int = 8, size: int = 24, n: int = 50) -> str | None:
    b = eviction.bounds(size, windows, 1e-6)
    window = list(range(1000, 1000 + n))
    young = [eviction.young_survivors(window, [window[i] for i in _window_survivors(policy, n, size, rng)], size)
             for _ in range(windows)]
    return eviction.judge(young, b)


def test_eviction_judge_names_the_direction_of_the_bias():
    rng = random.Random(7)
    assert "favours old batches" in _judge("oldest", rng)       # FIFO: the newest 24 survive
    assert "favours old batches" in _judge("older-half", rng)
    assert "favours new batches" in _judge("newest", rng)       # LIFO: the first 23 and the last survive
    window = list(range(50))
    assert eviction.young_survivors(window, window[:24], 24) == 0  # dropping new batches when full
    assert eviction.judge([0] * 8, eviction.bounds(24, 8, 1e-6)) is not None


def test_uniform_random_eviction_passes_and_older_half_fails_in_simulation():
    rng = random.Random(1234)
    assert all(_judge("uniform", rng) is None for _ in range(300))
    assert all(_judge("older-half", rng) is not None for _ in range(300))


def test_young_survivor_distribution_is_exact_for_any_window_of_at_least_2b():
    """Enumerate every eviction choice for small buffers and windows n >= 2B: the
    distribution of young survivors equals the chain's, whatever n is."""
    from fractions import Fraction
    from itertools import product

    for size in (2, 3):
        for n in (2 * size, 2 * size + 1, 2 * size + 3):
            counts: dict[int, Fraction] = {}
            evictions = n - size
            for choice in product(range(size), repeat=evictions):
                buf = list(range(size))
                for item, k in zip(range(size, n), choice, strict=True):
                    buf.pop(k)
                    buf.append(item)
                y = sum(1 for x in buf if x >= n - size)
                counts[y] = counts.get(y, Fraction(0)) + Fraction(1, size ** evictions)
            want = eviction.young_survivor_distribution(size)
            assert [counts.get(y, Fraction(0)) for y in range(size + 1)] == want, (size, n)


def test_eviction_false_fail_rate_is_below_one_in_a_million():
    checks = _load("checks")
    b = eviction.bounds(checks.EVICT_SIZE, checks.EVICT_WINDOWS, checks.EVICT_ALPHA)
    assert b.false_fail < 1e-6
    assert eviction.false_fail_probability(b.size, b.windows, b.lo, b.hi, incoming_may_lose=True) < 1e-6
    assert checks.EVICT_OUTAGE >= 2 * checks.EVICT_SIZE  # the chain is exact only for windows >= 2B
    # the deterministic policies are outside the bounds with certainty
    assert b.size * b.windows >= b.hi and b.windows * 1 <= b.lo


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
    assert len(GOOD) >= 5


@pytest.mark.slow
def test_a_program_that_does_not_start_fails_every_check_with_the_reason(toolchain):
    src = 'package main\n\nimport "os"\n\nfunc main() { os.Stderr.WriteString("boom\\n"); os.Exit(3) }\n'
    grade = grade_source(EXAM, TASK, src, toolchain)
    assert grade.points == 0 and grade.max_points == 10
    assert all(not c.passed for c in grade.checks)
    assert grade.details["flag_mapping"]["assumed_prompt_names"] is True
    assert "exited with status 3: boom" in grade.check("OnlineFlow").detail
