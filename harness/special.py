"""Special functions for harness.stats, without scipy: the regularized incomplete
beta function (continued fraction) and its inverse (safeguarded Newton with
bisection), and from them the Student t CDF and quantile. The standard normal
quantile comes from the standard library (:class:`statistics.NormalDist`,
Wichura's AS 241). tests/test_stats.py checks them against scipy.
"""

from __future__ import annotations

import math
from statistics import NormalDist

# --------------------------------------------------------------------------- special functions


_CF_EPS = 1e-16
_CF_TINY = 1e-300
_CF_MAXIT = 10_000


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for I_x(a, b), modified Lentz method (Numerical Recipes 6.4)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < _CF_TINY:
        d = _CF_TINY
    d = 1.0 / d
    h = d
    for m in range(1, _CF_MAXIT + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = _CF_TINY if abs(d) < _CF_TINY else d
        c = 1.0 + aa / c
        c = _CF_TINY if abs(c) < _CF_TINY else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = _CF_TINY if abs(d) < _CF_TINY else d
        c = 1.0 + aa / c
        c = _CF_TINY if abs(c) < _CF_TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _CF_EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function ``I_x(a, b)``.

    ``I_x(a, b) = B(x; a, b) / B(a, b) = 1/B(a, b) * integral_0^x t^(a-1) (1-t)^(b-1) dt``,
    evaluated with the continued fraction of Abramowitz & Stegun 26.5.8 (modified
    Lentz), using ``I_x(a, b) = 1 - I_(1-x)(b, a)`` when ``x > (a+1)/(a+b+2)`` so the
    fraction converges fast. Reference: Press et al., *Numerical Recipes*, 3rd ed.,
    section 6.4. Same convention as ``scipy.special.betainc(a, b, x)``.
    """
    if not (a > 0.0 and b > 0.0):
        raise ValueError(f"betainc needs a > 0 and b > 0, got a={a}, b={b}")
    if not (0.0 <= x <= 1.0):
        raise ValueError(f"betainc needs 0 <= x <= 1, got x={x}")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return min(1.0, front * _betacf(a, b, x) / a)
    return max(0.0, 1.0 - front * _betacf(b, a, 1.0 - x) / b)


def betaincinv(a: float, b: float, p: float) -> float:
    """Inverse of :func:`betainc` in ``x``: the ``x`` with ``I_x(a, b) = p``.

    This is the quantile function of the Beta(a, b) distribution
    (``scipy.stats.beta.ppf(p, a, b)``). ``I_x`` is increasing in ``x``, so the root
    is bracketed by ``[0, 1]`` and found by safeguarded Newton iteration ("rtsafe",
    Numerical Recipes 3rd ed., section 9.4): a Newton step using the Beta density
    ``x^(a-1) (1-x)^(b-1) / B(a, b)`` when it stays inside the bracket and converges
    fast enough, a bisection step otherwise (geometric while the bracket spans orders
    of magnitude). Stops when ``|I_x - p| <= 1e-14 p`` or the step is below ``1e-15``
    relative to ``x`` (far below the 1e-9 accuracy the intervals need). For
    ``p > 1/2`` it solves ``I_(1-x)(b, a) = 1 - p`` instead, for upper-tail precision.
    """
    if not (a > 0.0 and b > 0.0):
        raise ValueError(f"betaincinv needs a > 0 and b > 0, got a={a}, b={b}")
    if not (0.0 <= p <= 1.0):
        raise ValueError(f"betaincinv needs 0 <= p <= 1, got p={p}")
    if p == 0.0 or p == 1.0:
        return p
    if p > 0.5:
        # Upper half: solve the complementary problem I_y(b, a) = 1 - p (1 - p is exact
        # here), so quantiles far in the upper tail keep their precision.
        return 1.0 - _betaincinv_lower(b, a, 1.0 - p)
    return _betaincinv_lower(a, b, p)


def _betaincinv_lower(a: float, b: float, p: float) -> float:
    """Safeguarded Newton for ``I_x(a, b) = p`` with ``0 < p <= 1/2``."""
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    def f_df(x: float) -> tuple[float, float]:
        log_dens = (a - 1.0) * math.log(x) + (b - 1.0) * math.log1p(-x) - log_beta
        return betainc(a, b, x) - p, math.exp(min(log_dens, 700.0))

    lo, hi = 0.0, 1.0
    # Start from the small-x asymptote I_x(a, b) ~ x^a / (a B(a, b)) when it lies below
    # the mean (deep lower tail), else from the mean.
    x = a / (a + b)
    x_tail = math.exp(min(0.0, (math.log(p) + math.log(a) + log_beta) / a))
    if 0.0 < x_tail < x:
        x = x_tail
    dx_old = dx = 1.0
    f, df = f_df(x)
    for _ in range(2000):
        # I_x is only evaluated to ~1e-15 relative, so closer than this is noise.
        if abs(f) <= 1e-14 * p:
            return x
        if f < 0.0:
            lo = x
        else:
            hi = x
        step = f / df if df > 0.0 else math.inf
        newton_ok = lo < x - step < hi and abs(2.0 * f) <= abs(dx_old * df)
        dx_old = dx
        if newton_ok:
            dx = step
            x_new = x - dx
        else:
            # Bisect; geometrically while the bracket spans orders of magnitude.
            lo_eff = max(lo, 1e-300)
            x_new = math.sqrt(lo_eff * hi) if hi > 4.0 * lo_eff else 0.5 * (lo + hi)
            dx = x - x_new
        if x_new <= lo or x_new >= hi or abs(dx) <= 1e-15 * abs(x_new):
            return x_new
        x = x_new
        f, df = f_df(x)
    return x


_STD_NORMAL = NormalDist()


def normal_ppf(p: float) -> float:
    """Standard normal quantile ``z_p = Phi^-1(p)`` (``statistics.NormalDist``, AS 241)."""
    if not (0.0 < p < 1.0):
        raise ValueError(f"normal_ppf needs 0 < p < 1, got {p}")
    return _STD_NORMAL.inv_cdf(p)


def t_cdf(t: float, df: float) -> float:
    """Student t CDF with ``df`` degrees of freedom.

    ``F(t) = 1 - I_x(df/2, 1/2) / 2`` for ``t >= 0`` and ``I_x(df/2, 1/2) / 2`` for
    ``t < 0``, with ``x = df / (df + t^2)`` (Abramowitz & Stegun 26.7.1).
    """
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df}")
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(p: float, df: float) -> float:
    """Student t quantile: the ``t`` with ``t_cdf(t, df) = p`` (``scipy.stats.t.ppf``).

    For ``p > 1/2`` let ``q = 2(1 - p)`` (the two-sided tail). Then
    ``x = I^-1_q(df/2, 1/2)`` and ``t = sqrt(df (1 - x) / x)``; when ``q`` is large
    (``t`` small) the complementary form ``y = I^-1_(1-q)(1/2, df/2) = 1 - x``,
    ``t = sqrt(df y / (1 - y))`` keeps full precision. Symmetric for ``p < 1/2``.
    Example: ``t_ppf(0.975, 2) = 4.302653``.
    """
    if not (0.0 < p < 1.0):
        raise ValueError(f"t_ppf needs 0 < p < 1, got {p}")
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_ppf(1.0 - p, df)
    q = 2.0 * (1.0 - p)
    if q < 0.5:
        x = betaincinv(df / 2.0, 0.5, q)
        return math.sqrt(df * (1.0 - x) / x)
    y = betaincinv(0.5, df / 2.0, 1.0 - q)
    return math.sqrt(df * y / (1.0 - y))
