"""Intervals against reference implementations (scipy) and their basic honesty."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from assay.core.intervals import IntervalConfig, bootstrap_counts, wilson_interval


@given(n=st.integers(1, 5000), frac=st.floats(0, 1), conf=st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_interval_equals_scipy(n: int, frac: float, conf: float) -> None:
    k = round(frac * n)
    low, high = wilson_interval(k, n, conf)
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=conf, method="wilson")
    assert low == pytest.approx(ref.low, abs=1e-12)
    assert high == pytest.approx(ref.high, abs=1e-12)


def test_wilson_interval_of_nothing_is_undefined() -> None:
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_multinomial_bootstrap_matches_item_resampling_in_distribution() -> None:
    """Resampling cells multinomially is the same as resampling items: compare the two spreads."""
    rng = np.random.default_rng(1)
    correct = rng.random(600) < 0.8
    counts = np.array([(~correct).sum(), correct.sum()])
    low, high = bootstrap_counts(
        counts, lambda d: d[:, 1] / d.sum(axis=1), IntervalConfig(n_resamples=4000, seed=2), "acc"
    )
    idx = rng.integers(0, 600, (4000, 600))
    item_level = correct[idx].mean(axis=1)
    ref_low, ref_high = np.quantile(item_level, [0.025, 0.975])
    assert low == pytest.approx(ref_low, abs=0.006)
    assert high == pytest.approx(ref_high, abs=0.006)


def test_wilson_intervals_cover_the_true_rate_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(4)
    p, n, trials = 0.07, 200, 2000
    hits = sum(
        lo <= p <= hi for lo, hi in (wilson_interval(rng.binomial(n, p), n) for _ in range(trials))
    )
    assert 0.93 <= hits / trials <= 0.97
