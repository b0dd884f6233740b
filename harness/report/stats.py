"""Small-sample statistics for comparing models across a handful of seeds.

Pure functions: no I/O, no printing, no global state. Everything the reports
need to say "A beats B" honestly with 3-5 seeds:

* mean scores of bounded scores: :func:`mean_interval` (Student t, with a
  non-collapsing fallback when all scores are equal);
* paired model comparisons on the same (exam, task, seed) cells:
  :func:`paired_comparison` -> :class:`PairedResult`, :func:`sign_test`,
  :func:`paired_permutation_test`, :func:`mcnemar_exact`;
* pass@k: :func:`pass_at_k`;
* planning: :func:`seeds_needed`, and :func:`verdict`, which turns a
  :class:`PairedResult` into one plain sentence.

Distribution functions come from libraries, not from here: the Student t quantile
from scipy (``scipy.stats.t.ppf``), the standard normal quantile from the standard
library (``statistics.NormalDist``, Wichura's AS 241). Every function here is what
the reports, ``sweep compare`` and the quantization view use; nothing else is exported.

Zero-variance fallback (used by :func:`mean_interval` and :func:`paired_comparison`)
--------------------------------------------------------------------------------
With 3-5 seeds it is common that every seed scores the same (15/15 three times).
The t interval then has zero width, which claims certainty we do not have. When
all values are identical (or there is a single value), we instead rescale the
values to a proportion ``p = (mean - lo_bound) / (hi_bound - lo_bound)`` and use
the Wilson score interval for ``p`` with ``n`` trials, mapped back to the score
scale. Why Wilson: for any variable confined to ``[lo, hi]`` with mean ``mu`` the
variance is at most ``(hi - mu) * (mu - lo)`` (Bhatia & Davis 2000), attained by
the two-point (Bernoulli) distribution on the bounds. So the Wilson interval is the
interval for the *worst-case spread consistent with the observed mean*: a
deliberately conservative "we have not observed any spread, so we assume the most
spread possible". It never has zero width for ``n >= 1``, stays inside the bounds,
and for all-or-nothing tasks it is exactly the binomial answer (3/3 passes ->
true pass rate plausibly as low as 0.44). Note the discontinuity this implies: a
tiny amount of observed spread switches back to the (much narrower) t interval.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
from scipy.stats import t as student_t

__all__ = [
    "Interval",
    "MeanInterval",
    "PairedResult",
    "mcnemar_exact",
    "mean_interval",
    "paired_comparison",
    "paired_permutation_test",
    "pass_at_k",
    "seeds_needed",
    "sign_test",
    "verdict",
]

_STD_NORMAL = NormalDist()


def _normal_ppf(p: float) -> float:
    """Standard normal quantile ``z_p`` (``statistics.NormalDist``)."""
    return _STD_NORMAL.inv_cdf(p)


def _t_ppf(p: float, df: float) -> float:
    """Student t quantile with ``df`` degrees of freedom (``scipy.stats.t.ppf``)."""
    return float(student_t.ppf(p, df))


class Interval(NamedTuple):
    """A two-sided confidence interval ``(lo, hi)``."""

    lo: float
    hi: float


class MeanInterval(NamedTuple):
    """A point estimate with its confidence interval: ``(mean, lo, hi)``."""

    mean: float
    lo: float
    hi: float


# --------------------------------------------------------------------------- validation


def _check_conf(conf: float) -> None:
    if not (0.0 < conf < 1.0):
        raise ValueError(f"conf must be in (0, 1), got {conf!r}")


def _as_floats(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if any(math.isnan(v) or math.isinf(v) for v in out):
        raise ValueError(f"{what} must be finite numbers")
    return out


# --------------------------------------------------------------------------- rates


def _wilson_from_phat(phat: float, n: float, conf: float) -> Interval:
    """Wilson score interval for a proportion ``phat`` observed over ``n`` trials.

    With ``z = z_(1-(1-conf)/2)``: ``center = (p + z^2/(2n)) / (1 + z^2/n)``,
    ``half = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4n^2))``; never zero width for
    ``n >= 1`` (3/3 gives ``(0.4385, 1)``). References: Wilson (1927), JASA
    22:209-212; Brown, Cai & DasGupta (2001), Statistical Science 16:101-133.
    """
    z = _normal_ppf(0.5 + conf / 2.0)
    z2n = z * z / n
    denom = 1.0 + z2n
    center = (phat + z2n / 2.0) / denom
    half = z / denom * math.sqrt(phat * (1.0 - phat) / n + z2n / (4.0 * n))
    lo = 0.0 if phat <= 0.0 else max(0.0, center - half)
    hi = 1.0 if phat >= 1.0 else min(1.0, center + half)
    return Interval(lo, hi)


# --------------------------------------------------------------------------- means


def _mean_sd(xs: Sequence[float]) -> tuple[float, float]:
    n = len(xs)
    if max(xs) == min(xs):
        return xs[0], 0.0
    mean = math.fsum(xs) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))


def _bounded_mean_interval(
    xs: list[float], lo_bound: float, hi_bound: float, conf: float
) -> tuple[MeanInterval, float, str]:
    """(interval, sd, method) for values in [lo_bound, hi_bound]; method 't' or 'wilson'."""
    n = len(xs)
    mean, sd = _mean_sd(xs)
    if n >= 2 and sd > 0.0:
        half = _t_ppf(0.5 + conf / 2.0, n - 1) * sd / math.sqrt(n)
        return (
            MeanInterval(mean, max(lo_bound, mean - half), min(hi_bound, mean + half)),
            sd,
            "t",
        )
    width = hi_bound - lo_bound
    phat = min(1.0, max(0.0, (mean - lo_bound) / width))
    lo, hi = _wilson_from_phat(phat, n, conf)
    return MeanInterval(mean, lo_bound + lo * width, lo_bound + hi * width), sd, "wilson"


def mean_interval(
    scores: Sequence[float], lo_bound: float, hi_bound: float, conf: float = 0.95
) -> MeanInterval:
    """Confidence interval for the mean of bounded scores (e.g. 0..15 points per seed).

    Normal case (``n >= 2`` and not all scores equal): the Student t interval
    ``mean -/+ t_(1-alpha/2, n-1) * s / sqrt(n)`` (``s`` the sample standard
    deviation), clipped to ``[lo_bound, hi_bound]``.

    Fallback (all scores equal, or ``n = 1``): the Wilson interval of the normalized
    mean ``(mean - lo_bound) / (hi_bound - lo_bound)`` with ``n`` trials, mapped
    back; see the module docstring for why. It never has zero width.
    ``[15, 15, 15]`` on 0..15 gives ``(15, 6.58, 15)``.

    ``n = 0`` returns ``(nan, lo_bound, hi_bound)``: no data, any mean is possible.
    Scores outside the bounds raise ``ValueError``.
    Reference: Student (1908), Biometrika 6:1-25; fallback as in the module docstring.
    """
    _check_conf(conf)
    if not lo_bound < hi_bound:
        raise ValueError(f"need lo_bound < hi_bound, got {lo_bound}, {hi_bound}")
    xs = _as_floats(scores, "scores")
    if any(x < lo_bound or x > hi_bound for x in xs):
        raise ValueError(f"scores must lie in [{lo_bound}, {hi_bound}]")
    if not xs:
        return MeanInterval(math.nan, float(lo_bound), float(hi_bound))
    return _bounded_mean_interval(xs, float(lo_bound), float(hi_bound), conf)[0]


# --------------------------------------------------------------------------- exact tests


def _binom_half_two_sided(k: int, n: int) -> float:
    """Exact two-sided p for k successes in n trials under p = 1/2 (0 <= k <= n)."""
    if n == 0:
        return 1.0
    m = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(m + 1))
    return min(1.0, (2 * tail) / (1 << n))


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided sign test p-value (ties already dropped).

    Under H0 each non-tied pair favours either side with probability 1/2, so with
    ``m = wins + losses``: ``p = min(1, 2 * P(X <= min(wins, losses)))``,
    ``X ~ Binomial(m, 1/2)``; ``p = 1`` when ``m = 0`` (only ties). Equal to
    ``scipy.stats.binomtest(wins, m, 0.5).pvalue``. Reference: Conover (1999),
    *Practical Nonparametric Statistics*, 3rd ed., section 3.4.
    """
    wins, losses = operator.index(wins), operator.index(losses)
    if wins < 0 or losses < 0:
        raise ValueError("wins and losses must be >= 0")
    return _binom_half_two_sided(wins, wins + losses)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact (conditional) McNemar test p-value on the discordant pairs.

    ``b`` = pairs where only A passed, ``c`` = pairs where only B passed. Under H0
    ``b ~ Binomial(b + c, 1/2)``, so ``p = min(1, 2 * P(X <= min(b, c)))``; ``p = 1``
    when ``b + c = 0``. References: McNemar (1947), Psychometrika 12:153-157;
    Fagerland, Lydersen & Laake (2013), BMC Med. Res. Methodol. 13:91.
    """
    b, c = operator.index(b), operator.index(c)
    if b < 0 or c < 0:
        raise ValueError("b and c must be >= 0")
    return _binom_half_two_sided(b, b + c)


def _sign_flip_sums(d: np.ndarray) -> np.ndarray:
    sums = np.zeros(1)
    for x in d:
        sums = np.concatenate([sums + x, sums - x])
    return sums


def paired_permutation_test(
    diffs: Sequence[float], *, exact_max_n: int = 20, n_resamples: int = 100_000, seed: int = 0
) -> tuple[float, bool]:
    """Two-sided paired permutation (sign-flip) test of mean difference 0: ``(p, exact)``.

    Under H0 each difference is equally likely to have either sign, so
    ``p = #{s in {-1,+1}^n : |sum s_i d_i| >= |sum d_i|} / 2^n``. Zero differences
    do not change any sum, so they are dropped (same p). With at most
    ``exact_max_n`` non-zero differences all ``2^n`` flips are enumerated (meet in
    the middle: the two halves' sums are combined by sorted search); otherwise
    ``n_resamples`` random flips with ``numpy.random.default_rng(seed)`` and
    ``p = (1 + hits) / (1 + n_resamples)`` (Phipson & Smyth 2010, SAGMB 9:39).
    References: Fisher (1935), *The Design of Experiments*, section 21; Good (2005),
    *Permutation, Parametric and Bootstrap Tests of Hypotheses*, 3rd ed.
    """
    d = np.asarray(_as_floats(diffs, "diffs"), dtype=float)
    d = d[d != 0.0]
    m = d.size
    if m == 0:
        return 1.0, True
    observed = abs(float(d.sum()))
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))
    threshold = observed - tol
    if threshold <= 0.0:
        return 1.0, True
    if m <= exact_max_n:
        left = _sign_flip_sums(d[: m // 2])
        right = np.sort(_sign_flip_sums(d[m // 2 :]))
        n_ge = right.size - np.searchsorted(right, threshold - left, side="left")
        n_le = np.searchsorted(right, -threshold - left, side="right")
        hits = int(n_ge.sum() + n_le.sum())
        return hits / float(1 << m), True
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, min(n_resamples, 2_000_000 // m))
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        signs = rng.integers(0, 2, size=(size, m)) * 2.0 - 1.0
        hits += int((np.abs(signs @ d) >= threshold).sum())
        done += size
    return (1 + hits) / (1 + n_resamples), False


# --------------------------------------------------------------------------- paired comparison


@dataclass(frozen=True)
class PairedResult:
    """Result of :func:`paired_comparison`; differences are always A - B."""

    n: int
    mean_a: float
    mean_b: float
    mean_diff: float
    sd_diff: float  # sample SD of the differences (0 for n = 1)
    ci_low: float
    ci_high: float
    conf: float
    ci_method: str  # "t" or "wilson" (zero-variance fallback)
    wins: int  # cells where A scored more than B
    losses: int  # cells where A scored less than B
    ties: int
    sign_test_p: float
    permutation_p: float
    permutation_exact: bool
    max_points: float

    @property
    def identical(self) -> bool:
        """True when every paired difference is zero."""
        return self.wins == 0 and self.losses == 0

    @property
    def alpha(self) -> float:
        return 1.0 - self.conf


def paired_comparison(
    a: Sequence[float],
    b: Sequence[float],
    max_points: float,
    conf: float = 0.95,
    *,
    seed: int = 0,
    n_resamples: int = 100_000,
    exact_max_n: int = 20,
) -> PairedResult:
    """Compare two models scored on the same cells (same exam, task and seed).

    ``a[i]`` and ``b[i]`` are the two models' points on cell ``i``, each in
    ``[0, max_points]``; the differences ``d_i = a_i - b_i`` lie in
    ``[-max_points, max_points]``. Reports:

    * ``mean_diff`` and a paired t interval ``mean(d) -/+ t_(1-alpha/2, n-1) s_d / sqrt(n)``
      clipped to ``[-max_points, max_points]``; when all ``d_i`` are equal (or
      ``n = 1``) the Wilson fallback of :func:`mean_interval` on that range;
    * the exact sign test (:func:`sign_test`, ties dropped) and the exact paired
      permutation test (:func:`paired_permutation_test`: exact up to ``exact_max_n``
      non-zero differences, else ``n_resamples`` seeded Monte Carlo flips);
    * ``wins``/``losses``/``ties`` counted per cell.

    Cells are treated as independent, exchangeable pairs. Empty or unequal-length
    inputs and scores outside ``[0, max_points]`` raise ``ValueError``.
    """
    _check_conf(conf)
    if not max_points > 0:
        raise ValueError(f"max_points must be > 0, got {max_points}")
    xa, xb = _as_floats(a, "a"), _as_floats(b, "b")
    if len(xa) != len(xb):
        raise ValueError(f"paired lists differ in length: {len(xa)} vs {len(xb)}")
    if not xa:
        raise ValueError("paired_comparison needs at least one paired cell")
    m = float(max_points)
    if any(x < 0.0 or x > m for x in xa + xb):
        raise ValueError(f"scores must lie in [0, {max_points}]")
    d = [x - y for x, y in zip(xa, xb)]
    n = len(d)
    interval, sd, method = _bounded_mean_interval(d, -m, m, conf)
    wins = sum(1 for x in d if x > 0)
    losses = sum(1 for x in d if x < 0)
    perm_p, exact = paired_permutation_test(
        d, exact_max_n=exact_max_n, n_resamples=n_resamples, seed=seed
    )
    return PairedResult(
        n=n,
        mean_a=math.fsum(xa) / n,
        mean_b=math.fsum(xb) / n,
        mean_diff=interval.mean,
        sd_diff=sd,
        ci_low=interval.lo,
        ci_high=interval.hi,
        conf=conf,
        ci_method=method,
        wins=wins,
        losses=losses,
        ties=n - wins - losses,
        sign_test_p=sign_test(wins, losses),
        permutation_p=perm_p,
        permutation_exact=exact,
        max_points=m,
    )


# --------------------------------------------------------------------------- pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimator from ``n`` samples of which ``c`` are correct.

    ``pass@k = 1 - C(n-c, k) / C(n, k)``, computed in the numerically stable product
    form ``1 - prod_(i=n-c+1)^n (1 - k/i)``; exactly 1.0 when ``n - c < k``.
    Reference: Chen et al. (2021), "Evaluating Large Language Models Trained on
    Code", arXiv:2107.03374, eq. 1 and Figure 3.
    """
    n, c, k = operator.index(n), operator.index(c), operator.index(k)
    if n < 1 or not (0 <= c <= n) or not (1 <= k <= n):
        raise ValueError(f"need n >= 1, 0 <= c <= n, 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


# --------------------------------------------------------------------------- planning


def _z_sum(alpha: float, power: float) -> float:
    if not (0.0 < alpha < 1.0):
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not (0.0 < power < 1.0):
        raise ValueError(f"power must be in (0, 1), got {power}")
    return _normal_ppf(1.0 - alpha / 2.0) + _normal_ppf(power)


def seeds_needed(sd_diff: float, delta: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Paired samples needed to detect a mean difference ``delta`` (normal approximation).

    ``n = ceil(((z_(1-alpha/2) + z_power) * sd_diff / delta)^2)``, at least 2 (a paired
    t-test needs two differences). At the defaults ``(z sum)^2 = 7.85``, so
    ``sd_diff = delta`` needs 8. Being a normal approximation, it
    underestimates slightly for small ``n``. Reference: Chow, Shao & Wang (2008),
    section 3.1.
    """
    if sd_diff < 0:
        raise ValueError("sd_diff must be >= 0")
    if not delta > 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    raw = (_z_sum(alpha, power) * sd_diff / delta) ** 2
    return max(2, math.ceil(raw - 1e-9))


def _fmt_points(x: float, signed: bool = False) -> str:
    s = f"{x:+.1f}" if signed else f"{x:.1f}"
    if x != 0.0 and abs(x) < 0.05:
        s = f"{x:+.2g}" if signed else f"{x:.2g}"
    return s


def _fmt_p(p: float) -> str:
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.2g}" if p < 0.1 else f"p={p:.2f}"


def _fmt_count(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def verdict(
    result: PairedResult,
    name_a: str,
    name_b: str,
    exam: str,
    *,
    cells_per_seed: int = 1,
    power: float = 0.8,
    cap_seeds: int = 100,
) -> str:
    """One plain-language sentence about a :class:`PairedResult`.

    * All differences zero: "A and B scored identically on every paired cell (n=3)".
    * A difference is claimed only when both the t interval excludes 0 and the
      permutation p-value is below ``alpha = 1 - conf``: "A is better than B on
      <exam> (mean +2.3 points, 95% CI 0.4 to 4.2, permutation p=0.03)"; the sentence
      is phrased so the reported difference is positive.
    * Otherwise: "Cannot separate A and B on <exam> with 3 seeds (...); about N seeds
      would be needed to detect a difference of d points", where ``d`` is the
      observed ``|mean difference|`` (1 point if it is 0), and ``N`` comes from
      :func:`seeds_needed` with the observed SD of the differences. With ``n = 1``
      that SD is unknown and the Bhatia-Davis worst case
      ``sqrt((M - mean)(M + mean))`` is used. ``N`` is never below ``n + 1`` nor
      below the smallest ``n`` at which the exact permutation test can reach
      ``p < alpha`` (``2 / 2^n < alpha``: 6 at alpha = 0.05); above ``cap_seeds``
      it reads "more than 100 seeds". One exception: if the observed mean
      difference is exactly 0 and the cells at hand already give ``power`` to
      detect 1 point, the sentence says so ("... so any real difference is
      probably smaller") instead of asking for more seeds.

    ``cells_per_seed``: if each seed contributes several paired cells (one per
    task), pass the number of tasks so counts are reported in seeds.
    """
    cps = operator.index(cells_per_seed)
    if cps < 1:
        raise ValueError("cells_per_seed must be >= 1")
    r = result
    if r.identical:
        return f"{name_a} and {name_b} scored identically on every paired cell (n={r.n})"
    level = f"{r.conf * 100:g}% CI"
    alpha = r.alpha
    if r.permutation_p < alpha and (r.ci_low > 0.0 or r.ci_high < 0.0):
        if r.mean_diff > 0:
            better, worse, diff, lo, hi = name_a, name_b, r.mean_diff, r.ci_low, r.ci_high
        else:
            better, worse, diff, lo, hi = name_b, name_a, -r.mean_diff, -r.ci_high, -r.ci_low
        return (
            f"{better} is better than {worse} on {exam} (mean {_fmt_points(diff, True)} points, "
            f"{level} {_fmt_points(lo)} to {_fmt_points(hi)}, permutation {_fmt_p(r.permutation_p)})"
        )
    delta = abs(r.mean_diff) if r.mean_diff != 0.0 else 1.0
    if r.n >= 2:
        sd_plan = r.sd_diff
    else:
        m = r.max_points
        sd_plan = math.sqrt(max(0.0, (m - r.mean_diff) * (m + r.mean_diff)))
    cells = seeds_needed(sd_plan, delta, alpha=alpha, power=power)
    exact_min = 1
    while 2.0 / 2.0**exact_min >= alpha:
        exact_min += 1
    cells = max(cells, exact_min)
    already_powered = r.mean_diff == 0.0 and cells <= r.n
    needed = math.ceil(max(cells, r.n + 1) / cps)
    have = _fmt_count(r.n / cps)
    have_txt = f"{have} seed{'' if have == '1' else 's'}"
    if cps > 1:
        have_txt += f" ({r.n} paired cells)"
    d_txt = _fmt_points(delta)
    unit = "point" if d_txt == "1.0" else "points"
    head = (
        f"Cannot separate {name_a} and {name_b} on {exam} with {have_txt} "
        f"(mean {_fmt_points(r.mean_diff, True)} points, {level} {_fmt_points(r.ci_low)} to "
        f"{_fmt_points(r.ci_high)}, permutation {_fmt_p(r.permutation_p)}); "
    )
    if already_powered:
        return head + (
            f"these cells already had about {power * 100:g}% power to detect a difference "
            f"of {d_txt} {unit}, so any real difference is probably smaller"
        )
    need_txt = f"more than {cap_seeds} seeds" if needed > cap_seeds else f"about {needed} seeds"
    return head + f"{need_txt} would be needed to detect a difference of {d_txt} {unit}"
