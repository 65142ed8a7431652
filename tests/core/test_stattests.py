"""Tests and adjustments against scipy's reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from assay.core.accumulators.confusion import false_alarm_rate, missed_defect_rate
from assay.core.stattests import (
    benjamini_hochberg,
    binomial_cdf,
    mcnemar_exact,
    minimum_detectable_difference,
)


@given(n=st.integers(1, 20_000), frac=st.floats(0, 1), p=st.floats(0.001, 0.999))
def test_binomial_cdf_equals_scipy(n: int, frac: float, p: float) -> None:
    k = round(frac * n)
    assert binomial_cdf(k, n, p) == pytest.approx(stats.binom.cdf(k, n, p), abs=1e-10)


@given(broken=st.integers(0, 3000), fixed=st.integers(0, 3000))
def test_mcnemar_exact_equals_scipy_binomtest(broken: int, fixed: int) -> None:
    expected = 1.0 if broken + fixed == 0 else stats.binomtest(broken, broken + fixed, 0.5).pvalue
    assert mcnemar_exact(broken, fixed) == pytest.approx(expected, abs=1e-10)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=60))
def test_benjamini_hochberg_equals_scipy(p: list[float]) -> None:
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p), atol=1e-12)


def test_minimum_detectable_difference_uses_both_quantiles() -> None:
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert minimum_detectable_difference(0.01, 0.95, 0.8) == pytest.approx(z * 0.01)


def test_false_alarm_and_missed_defect_rates_from_their_definitions() -> None:
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 4, 5000), rng.integers(0, 4, 5000)
    c = np.bincount(y * 4 + pred, minlength=16).reshape(4, 4)
    good = 2
    assert false_alarm_rate(c, good) == pytest.approx(np.mean(pred[y == good] != good))
    assert missed_defect_rate(c, good) == pytest.approx(np.mean(pred[y != good] == good))
