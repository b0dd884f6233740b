"""`sweep compare` on hand-computed fixtures.

Fixture exam "fx": one task, three 1-point checks (build, runs, case:a), so a cell
scores 0..3. z = 1.959964 (95%); Wilson lower bound for k = n is n / (n + z^2).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.report import compare
from tests.store_fixtures import Cell, frame, scores, write_store

Z2 = 1.959963984540054 ** 2
ROOT = Path(__file__).resolve().parent.parent


def test_three_of_three_vs_zero_of_three(tmp_path):
    df = frame(tmp_path / "o", scores("A", [3, 3, 3]) + scores("B", [0, 0, 0]))
    [c] = compare.compare(df, "A", "B")
    r = c.result
    assert (r.n, r.mean_a, r.mean_b, r.mean_diff, r.sd_diff) == (3, 3.0, 0.0, 3.0, 0.0)
    # No spread in the differences: Wilson fallback on [-3, 3] with p = 1, n = 3.
    assert r.ci_method == "wilson"
    assert r.ci_low == pytest.approx(-3 + 6 * 3 / (3 + Z2))      # -0.3692
    assert r.ci_high == 3.0
    # Sign test: 3 wins, 0 losses: 2 * (1/2)^3. Permutation: 2 of 8 sign flips reach |9|.
    assert r.sign_test_p == 0.25 and r.permutation_p == 0.25 and r.permutation_exact
    # McNemar: 3 checks x 3 cells passed only by A: p = 2 * (1/2)^9.
    assert (c.mcnemar_b, c.mcnemar_c, c.check_pairs) == (9, 0, 9)
    assert c.mcnemar_p == 2 / 512
    assert (c.exam_score_a, c.exam_score_b, c.exam_max) == (3.0, 0.0, 3.0)
    # 3 seeds cannot show it: the exact test needs 2 / 2^n < 0.05, i.e. n >= 6.
    assert c.verdict == ("Cannot separate A and B on fx v1 with 3 seeds (mean +3.0 points, 95% CI -0.4 to 3.0, "
                         "permutation p=0.25); about 6 seeds would be needed to detect a difference of 3.0 points")


def test_identical_models(tmp_path):
    df = frame(tmp_path / "o", scores("A", [2, 3, 1]) + scores("B", [2, 3, 1]))
    [c] = compare.compare(df, "A", "B")
    assert c.result.identical and c.result.mean_diff == 0.0
    assert c.result.permutation_p == 1.0 and c.result.sign_test_p == 1.0
    assert (c.mcnemar_b, c.mcnemar_c, c.mcnemar_p) == (0, 0, 1.0)
    assert c.check_diffs == []
    assert c.verdict == "A and B scored identically on every paired cell (n=3)"


def test_clear_difference(tmp_path):
    df = frame(tmp_path / "o", scores("A", [3] * 8) + scores("B", [0] * 8))
    [c] = compare.compare(df, "A", "B")
    r = c.result
    assert r.permutation_p == 2 / 256 and r.sign_test_p == 2 / 256
    assert r.ci_low == pytest.approx(-3 + 6 * 8 / (8 + Z2))       # 1.0534
    assert c.verdict == ("A is better than B on fx v1 (mean +3.0 points, 95% CI 1.1 to 3.0, "
                         "permutation p=0.0078)")
    # Asking the other way round names the better model first all the same.
    [c2] = compare.compare(df, "B", "A")
    assert c2.result.mean_diff == -3.0 and c2.verdict.startswith("A is better than B on fx v1 (mean +3.0")


def test_t_interval_with_spread(tmp_path):
    # Differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653; 2 -/+ 4.302653/sqrt(3).
    df = frame(tmp_path / "o", scores("A", [3, 3, 3]) + scores("B", [2, 1, 0]))
    [c] = compare.compare(df, "A", "B")
    r = c.result
    assert r.ci_method == "t" and r.sd_diff == 1.0
    assert r.ci_low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-6)
    assert r.ci_high == 3.0                                          # 4.48 clipped to the range
    assert r.permutation_p == 0.25 and (r.wins, r.losses, r.ties) == (3, 0, 0)
    # Checks: B passed build 2/3 (seeds 1, 2), runs 1/3 (seed 1), case:a 0/3 -> A-only pairs 1 + 2 + 3 = 6.
    assert (c.mcnemar_b, c.mcnemar_c) == (6, 0) and c.mcnemar_p == 2 / 64
    assert [(d.check, d.a_passed, d.b_passed) for d in c.check_diffs] == [
        ("case:a", 3, 0), ("runs", 3, 1), ("build", 3, 2)]


def test_pairs_only_matching_cells(tmp_path):
    cells = scores("A", [3, 3, 3, 3]) + scores("B", [3, 3, 3]) + [Cell("B", 4, gen_outcome="endpoint_error")]
    df = frame(tmp_path / "o", cells)
    [c] = compare.compare(df, "A", "B")
    assert c.result.n == 3 and c.seeds == [1, 2, 3]
    assert (c.unpaired_a, c.unpaired_b) == (1, 0)
    assert c.notes == ["left out: 1 cell(s) of A and 0 of B without a counterpart"]


def test_several_tasks_count_seeds_not_cells(tmp_path):
    cells = [Cell(m, s, task=t, passed=("build", "runs", "case:a") if m == "A" else ("build",))
             for m in ("A", "B") for s in (1, 2, 3) for t in ("t1", "t2")]
    [c] = compare.compare(frame(tmp_path / "o", cells), "A", "B")
    assert c.result.n == 6 and c.tasks == ["t1", "t2"]
    assert (c.exam_score_a, c.exam_score_b, c.exam_max) == (6.0, 2.0, 6.0)
    assert c.verdict.startswith("Cannot separate A and B on fx v1 with 3 seeds (6 paired cells)")
    # One unit: exam points. Per task A leads by 2 of 3 points; per seed by 4 of 6, as the exam scores say.
    assert (c.result.mean_diff, c.result.max_points) == (4.0, 6.0)
    assert "(mean +4.0 points" in c.verdict
    text = compare.render([c])
    assert "  exam score (mean over seeds, of 6): A 6.0, B 2.0\n" in text
    assert "  difference in exam points per seed: +4.0, 95% CI" in text
    assert "from the 6 paired task attempts x 2 task(s))" in text
    assert "per task" not in text


def test_exam_filter_and_errors(tmp_path):
    cells = scores("A", [3, 3]) + scores("B", [1, 1]) + scores("A", [1, 1], exam="other") \
        + scores("B", [1, 1], exam="other") + scores("C", [1, 1], start_seed=7)
    df = frame(tmp_path / "o", cells)
    assert [(c.exam, c.result.mean_diff) for c in compare.compare(df, "A", "B")] == [("fx", 2.0), ("other", 0.0)]
    assert [c.exam for c in compare.compare(df, "A", "B", exam="other")] == ["other"]
    with pytest.raises(ConfigError, match="model 'Z' has no attempts"):
        compare.compare(df, "A", "Z")
    with pytest.raises(ConfigError, match="two different models"):
        compare.compare(df, "A", "A")
    with pytest.raises(ConfigError, match="no attempts for exam 'nope'"):
        compare.compare(df, "A", "B", exam="nope")
    with pytest.raises(ConfigError, match="no paired cells"):
        compare.compare(df, "A", "C")


def test_render_text(tmp_path):
    df = frame(tmp_path / "o", scores("A", [3, 3, 3]) + scores("B", [0, 0, 0]))
    text = compare.render(compare.compare(df, "A", "B"))
    assert text.startswith("fx v1: A (A) vs B (B), 3 paired cells (3 seed(s) x 1 task(s))\n")
    assert "  sign test: A higher on 3, B higher on 0, 0 tie(s); p=0.25\n" in text
    assert "  per-check McNemar: 9 check(s) passed only by A, 0 only by B of 9 pairs; exact p=0.0039" in text
    assert "    hello/build: A 3/3, B 0/3\n" in text
    assert text.rstrip().endswith("about 6 seeds would be needed to detect a difference of 3.0 points")


def test_cli_compare(tmp_path):
    write_store(tmp_path / "o", scores("A", [3] * 8) + scores("B", [0] * 8))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(ROOT / "sweep.py"), "compare", str(tmp_path / "o"), *args],
                              capture_output=True, text=True, cwd=ROOT, env=os.environ, timeout=120)

    r = run("A", "B")
    assert r.returncode == 0, r.stderr
    assert "verdict: A is better than B on fx v1" in r.stdout
    r = run("A", "B", "--json")
    data = json.loads(r.stdout)
    assert data[0]["result"]["permutation_p"] == 2 / 256 and data[0]["mcnemar_b"] == 24
    r = run("A", "nope")
    assert r.returncode == 2 and r.stderr.startswith("sweep: error: model 'nope' has no attempts")
