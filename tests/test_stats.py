"""Tests for harness.report.stats.

Every formula is checked twice: against literal known values (textbook numbers,
hand-computed closed forms), so the tests mean something without scipy, and
against scipy over grids when scipy is importable (``pytest.importorskip``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import FrozenInstanceError

import numpy as np
import pytest

from harness.report.stats import (
    MeanInterval,
    PairedResult,
    mcnemar_exact,
    mean_interval,
    paired_comparison,
    paired_permutation_test,
    pass_at_k,
    seeds_needed,
    sign_test,
    verdict,
)

Z975 = 1.959963984540054


def _scipy():
    return pytest.importorskip("scipy.stats")


def wilson_by_hand(k: float, n: int, z: float = Z975) -> tuple[float, float]:
    """The Wilson formula typed out independently (as in statsmodels' proportion_confint)."""
    p = k / n
    denom = 1 + z**2 / n
    center = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def brute_force_permutation_p(d: list[float]) -> float:
    observed = abs(sum(d))
    hits = sum(
        1
        for signs in itertools.product((1, -1), repeat=len(d))
        if abs(sum(s * x for s, x in zip(signs, d))) >= observed - 1e-12
    )
    return hits / 2 ** len(d)


# --------------------------------------------------------------------------- the Wilson fallback


def wilson(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """The Wilson interval of k/n, through the public function that uses it: the
    fallback of mean_interval on n equal scores of k/n in [0, 1]."""
    _, lo, hi = mean_interval([k / n] * n, 0, 1, conf)
    return lo, hi


class TestWilsonFallback:
    def test_known_values(self) -> None:
        assert wilson(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
        assert wilson(3, 3) == pytest.approx((0.438503, 1.0), abs=1e-6)
        assert wilson(0, 3) == pytest.approx((0.0, 0.561497), abs=1e-6)
        assert wilson(1, 3) == pytest.approx((0.061492, 0.792340), abs=1e-6)
        assert wilson(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-6)

    def test_matches_hand_formula(self) -> None:
        for n in range(1, 25):
            for k in range(n + 1):
                assert wilson(k, n) == pytest.approx(wilson_by_hand(k, n), abs=1e-12)
        z90 = 1.6448536269514722
        assert wilson(2, 7, conf=0.9) == pytest.approx(wilson_by_hand(2, 7, z90), abs=1e-12)

    def test_edges_never_collapse(self) -> None:
        for n in range(1, 12):
            for k in range(n + 1):
                lo, hi = wilson(k, n)
                assert 0.0 <= lo < hi <= 1.0
                assert lo <= k / n + 1e-12 and k / n - 1e-12 <= hi
            assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0

    def test_zero_of_three_vs_three_of_three(self) -> None:
        lo0, hi0 = wilson(0, 3)
        lo3, hi3 = wilson(3, 3)
        assert hi0 == pytest.approx(1 - lo3, abs=1e-15)  # symmetry
        assert hi0 > lo3  # 3 seeds cannot separate 0% from 100% at 95%


# --------------------------------------------------------------------------- means


class TestMeanInterval:
    def test_t_interval_known_value(self) -> None:
        # mean 12, s = 2, se = 2/sqrt(3), t(0.975, 2) = 4.302653 -> 12 -/+ 4.968276
        m, lo, hi = mean_interval([10, 12, 14], 0, 100)
        assert m == 12.0
        assert (lo, hi) == pytest.approx((7.031724, 16.968276), abs=1e-6)
        # the same scores on a 0..15 exam are clipped at 15
        assert mean_interval([10, 12, 14], 0, 15) == pytest.approx((12.0, 7.031724, 15.0), abs=1e-6)

    def test_zero_variance_falls_back_to_wilson(self) -> None:
        m, lo, hi = mean_interval([15, 15, 15], 0, 15)
        assert m == 15.0 and hi == 15.0
        assert lo == pytest.approx(15 * 0.438503, abs=1e-5)
        m, lo, hi = mean_interval([0, 0, 0], 0, 15)
        assert (m, lo) == (0.0, 0.0) and hi == pytest.approx(15 * 0.561497, abs=1e-5)
        m, lo, hi = mean_interval([7.5] * 4, 0, 15)
        w = wilson_by_hand(2, 4)  # phat = 1/2 with n = 4
        assert (lo, hi) == pytest.approx((15 * w[0], 15 * w[1]), abs=1e-12)
        # with an offset range the fallback is mapped back correctly
        m, lo, hi = mean_interval([5, 5, 5], 5, 20)
        assert m == 5.0 and lo == 5.0 and hi == pytest.approx(5 + 15 * 0.561497, abs=1e-5)

    def test_never_zero_width(self) -> None:
        for n in (1, 2, 3, 5):
            for v in (0.0, 0.1, 7.0, 14.9, 15.0):
                m, lo, hi = mean_interval([v] * n, 0, 15)
                assert lo <= m <= hi and hi - lo > 0.1
                assert 0.0 <= lo and hi <= 15.0

    def test_n1_and_n0(self) -> None:
        # n = 1: Wilson on phat = 9/15 with one trial
        m, lo, hi = mean_interval([9], 0, 15)
        z2 = Z975**2
        phat = 9 / 15
        center = (phat + z2 / 2) / (1 + z2)
        half = Z975 * math.sqrt(phat * (1 - phat) + z2 / 4) / (1 + z2)
        assert (m, lo, hi) == pytest.approx((9.0, 15 * (center - half), 15 * (center + half)), abs=1e-12)
        m, lo, hi = mean_interval([], 0, 15)
        assert math.isnan(m) and (lo, hi) == (0.0, 15.0)
        assert isinstance(mean_interval([1, 2], 0, 15), MeanInterval)

    def test_rejects_bad_input(self) -> None:
        with pytest.raises(ValueError):
            mean_interval([16], 0, 15)
        with pytest.raises(ValueError):
            mean_interval([1, float("nan")], 0, 15)
        with pytest.raises(ValueError):
            mean_interval([1], 15, 0)

    def test_against_scipy(self) -> None:
        stats = _scipy()
        rng = np.random.default_rng(1)
        for n in (2, 3, 4, 5, 8):
            x = rng.uniform(20, 80, size=n)
            m, lo, hi = mean_interval(list(x), -1000, 1000, conf=0.9)  # wide: no clipping
            exp = stats.t.interval(0.9, n - 1, loc=x.mean(), scale=stats.sem(x))
            assert (m, lo, hi) == pytest.approx((x.mean(), *exp), abs=1e-9)


# --------------------------------------------------------------------------- exact tests


class TestExactTests:
    @pytest.mark.parametrize(
        ("wins", "losses", "expected"),
        [(3, 0, 0.25), (0, 3, 0.25), (10, 0, 2 / 1024), (8, 2, 0.109375), (5, 5, 1.0), (1, 0, 1.0), (0, 0, 1.0)],
    )
    def test_sign_test_known(self, wins: int, losses: int, expected: float) -> None:
        assert sign_test(wins, losses) == pytest.approx(expected, abs=1e-15)

    @pytest.mark.parametrize(
        ("b", "c", "expected"),
        [(0, 0, 1.0), (1, 0, 1.0), (0, 6, 0.03125), (2, 8, 0.109375), (0, 3, 0.25), (4, 4, 1.0)],
    )
    def test_mcnemar_known(self, b: int, c: int, expected: float) -> None:
        assert mcnemar_exact(b, c) == pytest.approx(expected, abs=1e-15)

    def test_binomial_tests_against_scipy(self) -> None:
        stats = _scipy()
        for m in (1, 2, 3, 5, 8, 13, 30):
            for k in range(m + 1):
                expected = stats.binomtest(k, m, 0.5).pvalue
                assert sign_test(k, m - k) == pytest.approx(expected, rel=1e-12)
                assert mcnemar_exact(k, m - k) == pytest.approx(expected, rel=1e-12)

    def test_permutation_known_and_brute_force(self) -> None:
        assert paired_permutation_test([1, 2, 3]) == (0.25, True)
        assert paired_permutation_test([1, 2, 3, 4, 5, 6]) == (2 / 64, True)
        assert paired_permutation_test([0, 0, 0]) == (1.0, True)
        assert paired_permutation_test([]) == (1.0, True)
        assert paired_permutation_test([1, -1]) == (1.0, True)
        rng = np.random.default_rng(3)
        for n in (1, 2, 5, 9, 12):
            d = list(np.round(rng.normal(0.5, 2, size=n), 1))
            p, exact = paired_permutation_test(d)
            assert exact and p == pytest.approx(brute_force_permutation_p(d), abs=1e-12)
        # zeros do not change the p-value
        assert paired_permutation_test([1.5, -0.5, 2, 0, 0])[0] == paired_permutation_test([1.5, -0.5, 2])[0]

    def test_permutation_monte_carlo(self) -> None:
        rng = np.random.default_rng(5)
        d = list(rng.normal(0.4, 1.5, size=24))
        exact_p, exact = paired_permutation_test(d, exact_max_n=24)
        assert exact
        mc1 = paired_permutation_test(d, n_resamples=20_000, seed=1)
        mc2 = paired_permutation_test(d, n_resamples=20_000, seed=1)
        assert mc1 == mc2 and mc1[1] is False
        assert mc1[0] == pytest.approx(exact_p, abs=0.015)
        # Phipson-Smyth: a Monte Carlo p is never 0
        assert paired_permutation_test([1.0] * 30, n_resamples=1000)[0] == pytest.approx(1 / 1001)

    def test_permutation_against_scipy(self) -> None:
        stats = _scipy()
        rng = np.random.default_rng(11)

        def stat(x, y, axis):
            return np.mean(x - y, axis=axis)

        for n in (3, 5, 8):
            a = rng.integers(0, 16, size=n).astype(float)
            b = rng.integers(0, 16, size=n).astype(float)
            res = stats.permutation_test(
                (a, b), stat, permutation_type="samples", n_resamples=np.inf, vectorized=True
            )
            assert paired_permutation_test(list(a - b))[0] == pytest.approx(res.pvalue, abs=1e-12)


# --------------------------------------------------------------------------- paired comparison


class TestPairedComparison:
    def test_known_t_interval_and_counts(self) -> None:
        a = [12, 13, 15, 11, 14, 13, 12, 15]
        b = [10, 11, 12, 11, 10, 12, 9, 13]
        r = paired_comparison(a, b, max_points=15)
        d = np.array(a, float) - np.array(b, float)
        half = 2.364624252 * d.std(ddof=1) / math.sqrt(8)  # t(0.975, 7)
        assert r.n == 8 and (r.wins, r.losses, r.ties) == (7, 0, 1)
        assert r.mean_diff == pytest.approx(2.125)
        assert (r.ci_low, r.ci_high) == pytest.approx((2.125 - half, 2.125 + half), abs=1e-8)
        assert r.ci_method == "t"
        assert r.sign_test_p == pytest.approx(2 / 128)
        assert r.permutation_p == pytest.approx(brute_force_permutation_p(list(d)))
        assert r.permutation_exact and not r.identical
        assert r.mean_a == pytest.approx(13.125) and r.mean_b == pytest.approx(11.0)

    def test_zero_of_three_vs_three_of_three(self) -> None:
        r = paired_comparison([0, 0, 0], [15, 15, 15], max_points=15)
        assert r.mean_diff == -15.0 and r.sd_diff == 0.0 and r.ci_method == "wilson"
        # normalized difference phat = 0 with n = 3 -> Wilson (0, 0.561497) on [-15, 15]
        assert r.ci_low == -15.0
        assert r.ci_high == pytest.approx(-15 + 30 * 0.561497, abs=1e-5)
        assert r.ci_high > 0  # 3 seeds: not enough, and the CI says so
        assert (r.wins, r.losses, r.ties) == (0, 3, 0)
        assert r.sign_test_p == 0.25 and r.permutation_p == 0.25

    def test_identical_models(self) -> None:
        r = paired_comparison([10, 12.5, 9], [10, 12.5, 9], max_points=15)
        assert r.identical and r.mean_diff == 0.0 and r.ties == 3
        assert r.sign_test_p == 1.0 and r.permutation_p == 1.0
        assert r.ci_low < 0 < r.ci_high  # no collapse to a zero-width interval
        w = wilson_by_hand(1.5, 3)  # normalized mean difference phat = 1/2 with n = 3
        assert (r.ci_low, r.ci_high) == pytest.approx((-15 + 30 * w[0], -15 + 30 * w[1]), abs=1e-12)

    def test_n1(self) -> None:
        r = paired_comparison([10], [9], max_points=15)
        assert r.n == 1 and r.sd_diff == 0.0 and r.ci_method == "wilson"
        assert r.ci_low < 1.0 < r.ci_high
        assert r.sign_test_p == 1.0 and r.permutation_p == 1.0

    def test_frozen(self) -> None:
        r = paired_comparison([1, 2], [2, 2], max_points=3)
        assert isinstance(r, PairedResult)
        with pytest.raises(FrozenInstanceError):
            r.n = 5  # type: ignore[misc]

    def test_rejects_bad_input(self) -> None:
        with pytest.raises(ValueError):
            paired_comparison([], [], max_points=15)
        with pytest.raises(ValueError):
            paired_comparison([1, 2], [1], max_points=15)
        with pytest.raises(ValueError):
            paired_comparison([16], [1], max_points=15)
        with pytest.raises(ValueError):
            paired_comparison([1], [1], max_points=0)

    def test_monte_carlo_path_is_seeded(self) -> None:
        rng = np.random.default_rng(2)
        a = list(rng.integers(0, 16, size=30).astype(float))
        b = list(rng.integers(0, 16, size=30).astype(float))
        r1 = paired_comparison(a, b, 15, n_resamples=5000, seed=4)
        r2 = paired_comparison(a, b, 15, n_resamples=5000, seed=4)
        assert r1 == r2 and not r1.permutation_exact

    def test_against_scipy(self) -> None:
        stats = _scipy()
        rng = np.random.default_rng(9)
        for n in (3, 4, 5, 10):
            a = rng.uniform(5, 10, size=n)
            b = rng.uniform(5, 10, size=n)
            r = paired_comparison(list(a), list(b), max_points=15, conf=0.9)
            ci = stats.ttest_rel(a, b).confidence_interval(0.9)
            assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-9)


# --------------------------------------------------------------------------- pass@k


class TestPassAtK:
    @pytest.mark.parametrize(
        ("n", "c", "k", "expected"),
        [
            (10, 0, 1, 0.0),
            (10, 1, 1, 0.1),
            (10, 5, 1, 0.5),
            (10, 10, 1, 1.0),
            (5, 1, 2, 0.4),  # 1 - C(4,2)/C(5,2) = 1 - 6/10
            (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
            (10, 6, 5, 1.0),  # n - c < k
            (3, 3, 3, 1.0),
            (3, 0, 3, 0.0),
        ],
    )
    def test_known(self, n: int, c: int, k: int, expected: float) -> None:
        assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-15)

    def test_matches_comb_definition_and_is_stable(self) -> None:
        for n, c, k in ((200, 10, 100), (200, 1, 1), (200, 13, 10), (1000, 3, 100)):
            expected = 1 - math.comb(n - c, k) / math.comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12)
        assert 0.0 < pass_at_k(10_000, 1, 1) < 1.0

    def test_rejects_bad(self) -> None:
        for args in ((0, 0, 1), (5, 6, 1), (5, 1, 0), (5, 1, 6)):
            with pytest.raises(ValueError):
                pass_at_k(*args)


# --------------------------------------------------------------------------- planning + verdict


class TestPlanning:
    def test_known(self) -> None:
        assert seeds_needed(1.0, 1.0) == 8  # 7.849
        assert seeds_needed(2.0, 1.0) == 32  # 31.40
        assert seeds_needed(0.0, 1.0) == 2
        assert seeds_needed(1.0, 1.0, alpha=0.01, power=0.9) == 15  # (2.5758 + 1.2816)^2 = 14.88
        # the smallest n whose normal-approximation detectable difference is at most delta
        zsum = 1.959963984540054 + 0.8416212335729143  # 2.801585
        n = seeds_needed(3.0, 1.5)
        assert zsum * 3.0 / math.sqrt(n) <= 1.5 < zsum * 3.0 / math.sqrt(n - 1)

    def test_rejects_bad(self) -> None:
        with pytest.raises(ValueError):
            seeds_needed(1.0, 0.0)
        with pytest.raises(ValueError):
            seeds_needed(-1.0, 1.0)
        with pytest.raises(ValueError):
            seeds_needed(1.0, 1.0, power=1.0)


class TestVerdict:
    def test_better(self) -> None:
        r = paired_comparison(
            [12, 13, 15, 11, 14, 13, 12, 15], [10, 11, 12, 11, 10, 12, 9, 13], max_points=15
        )
        assert verdict(r, "A", "B", "go-basics") == (
            "A is better than B on go-basics (mean +2.1 points, 95% CI 1.1 to 3.2, permutation p=0.016)"
        )
        r2 = paired_comparison(
            [10, 11, 12, 11, 10, 12, 9, 13], [12, 13, 15, 11, 14, 13, 12, 15], max_points=15
        )
        assert verdict(r2, "A", "B", "go-basics").startswith(
            "B is better than A on go-basics (mean +2.1 points, 95% CI 1.1 to 3.2"
        )

    def test_identical(self) -> None:
        r = paired_comparison([10, 12, 9], [10, 12, 9], max_points=15)
        assert verdict(r, "A", "B", "ex") == "A and B scored identically on every paired cell (n=3)"

    def test_cannot_separate_three_seeds(self) -> None:
        r = paired_comparison([15, 15, 15], [0, 0, 0], max_points=15)
        # zero spread: the exact permutation test needs 6 cells to reach p < 0.05
        assert verdict(r, "q8", "q4", "ex") == (
            "Cannot separate q8 and q4 on ex with 3 seeds (mean +15.0 points, 95% CI -1.8 to 15.0, "
            "permutation p=0.25); about 6 seeds would be needed to detect a difference of 15.0 points"
        )

    def test_cannot_separate_uses_observed_sd(self) -> None:
        r = paired_comparison([12, 9, 13], [10, 10, 10], max_points=15)  # d = 2, -1, 3
        text = verdict(r, "A", "B", "ex")
        expected = seeds_needed(r.sd_diff, abs(r.mean_diff))
        assert text.startswith("Cannot separate A and B on ex with 3 seeds (mean +1.3 points")
        assert text.endswith(f"about {expected} seeds would be needed to detect a difference of 1.3 points")

    def test_cap_and_zero_mean(self) -> None:
        r = paired_comparison([10, 12, 9], [11, 10, 9], max_points=15)  # d = -1, 2, 0
        assert verdict(r, "A", "B", "ex").endswith(
            "more than 100 seeds would be needed to detect a difference of 0.3 points"
        )
        r0 = paired_comparison([11, 9, 10], [10, 10, 10], max_points=15)  # d = 1, -1, 0: mean 0
        text = verdict(r0, "A", "B", "ex")
        assert "mean +0.0 points" in text
        assert text.endswith(f"about {seeds_needed(1.0, 1.0)} seeds would be needed to detect a difference of 1.0 point")

    def test_n1(self) -> None:
        r = paired_comparison([10], [9], max_points=15)
        text = verdict(r, "A", "B", "ex")
        assert text.startswith("Cannot separate A and B on ex with 1 seed (")
        assert text.endswith("more than 100 seeds would be needed to detect a difference of 1.0 point")

    def test_cells_per_seed(self) -> None:
        a = [1.0, 2.0, 3.0] * 30
        b = [2.0, 2.0, 2.0] * 30  # mean difference exactly 0, 90 cells = 3 seeds x 30 tasks
        r = paired_comparison(a, b, max_points=15)
        text = verdict(r, "A", "B", "ex", cells_per_seed=30)
        assert text.startswith("Cannot separate A and B on ex with 3 seeds (90 paired cells) (mean +0.0 points")
        assert text.endswith("already had about 80% power to detect a difference of 1.0 point, "
                             "so any real difference is probably smaller")
        r2 = paired_comparison([12, 9, 13] * 2, [10, 10, 10] * 2, max_points=15)
        assert "with 2 seeds (6 paired cells)" in verdict(r2, "A", "B", "ex", cells_per_seed=3)
