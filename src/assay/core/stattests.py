"""Tests and multiplicity control used by comparisons: exact McNemar, Benjamini-Hochberg,
bootstrap p-values, minimum detectable differences. Pure Python/numpy, checked against scipy.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

_NORMAL = NormalDist()


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, eps = 1e-300, 3e-16
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularised incomplete beta function."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return regularized_beta(n - k, k + 1, 1.0 - p)


def hypergeometric_sf(k: int, population: int, successes: int, draws: int) -> float:
    """P(X >= k) for X ~ Hypergeometric(population, successes, draws): the one-sided p-value of
    Fisher's exact test that a subset of ``draws`` items holds at least ``k`` of the
    ``successes``. Exact (up to float rounding), and conservative where a G-test on small counts
    is not.
    """
    high = min(draws, successes)
    low = max(0, draws - (population - successes))
    k = max(k, low)
    if k > high:
        return 0.0

    def log_choose(n: int, r: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)

    log_first = (
        log_choose(successes, k)
        + log_choose(population - successes, draws - k)
        - log_choose(population, draws)
    )
    # Each next term from the previous by its ratio, summed in log space: vectorised, stable.
    j = np.arange(k, high, dtype=np.float64)
    ratios = (successes - j) * (draws - j) / ((j + 1) * (population - successes - draws + j + 1))
    logs = log_first + np.concatenate([[0.0], np.cumsum(np.log(ratios))])
    top = float(logs.max())
    return float(min(1.0, math.exp(top) * np.exp(logs - top).sum()))


def mcnemar_exact(broken: int, fixed: int) -> float:
    """Two-sided exact McNemar p-value on the discordant pairs (1.0 when there are none)."""
    n = broken + fixed
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * binomial_cdf(min(broken, fixed), n, 0.5))


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order."""
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = running
    return q


def bootstrap_p_value(replicates: npt.NDArray[np.float64], bound: float, alternative: str) -> float:
    """Percentile-bootstrap p-value, consistent with the percentile interval.

    ``alternative="less"``: evidence that the true value lies below ``bound`` (p is the share of
    replicates at or above it); ``"greater"``: evidence that it lies above ``bound``.
    """
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return 1.0
    against = np.count_nonzero(finite >= bound if alternative == "less" else finite <= bound)
    return float((against + 1) / (finite.size + 1))


def minimum_detectable_difference(std_error: float, confidence: float, power: float) -> float:
    """Smallest true difference a two-sided test at ``confidence`` detects with ``power``."""
    z_alpha = _NORMAL.inv_cdf(0.5 + confidence / 2.0)
    z_power = _NORMAL.inv_cdf(power)
    return (z_alpha + z_power) * std_error
