"""Kappas from merged label patterns equal scikit-learn's and statsmodels' on the raw items."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from assay.core.agreement import PatternCounts, agreement_summary, cohen_kappa, fleiss_kappa
from assay.core.intervals import IntervalConfig

CATS = ("ok", "lump", "void", "other")


def raters(
    seed: int, n: int = 400, m: int = 3, flip: float = 0.2, missing: float = 0.0
) -> np.ndarray:
    """[n, 1 + m]: a model and m experts who copy a hidden truth with some noise."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    out = np.repeat(truth[:, None], m + 1, axis=1)
    noise = rng.random(out.shape) < flip
    out[noise] = rng.choice(4, noise.sum())
    out[:, 1:][rng.random((n, m)) < missing] = -1
    return out


def test_pairwise_kappas_equal_sklearn() -> None:
    codes = raters(0, missing=0.1)
    summary = agreement_summary(
        PatternCounts(4).update(codes), ("a", "b", "c"), CATS, IntervalConfig(n_resamples=200)
    )
    for row in summary["expert_pairs"]:
        a, b = 1 + "abc".index(row["a"]), 1 + "abc".index(row["b"])
        both = (codes[:, a] >= 0) & (codes[:, b] >= 0)
        assert row["n_items"] == both.sum()
        assert row["kappa"] == pytest.approx(cohen_kappa_score(codes[both, a], codes[both, b]))
        low, high = row["kappa_ci"]
        assert low < row["kappa"] < high
    for row in summary["model_vs_expert"]:
        e = 1 + "abc".index(row["expert"])
        seen = codes[:, e] >= 0
        assert row["kappa"] == pytest.approx(cohen_kappa_score(codes[seen, 0], codes[seen, e]))
        assert row["agreement"] == pytest.approx((codes[seen, 0] == codes[seen, e]).mean())


def test_fleiss_kappa_equals_statsmodels_on_fully_rated_items() -> None:
    codes = raters(1, missing=0.05)
    full = (codes[:, 1:] >= 0).all(axis=1)
    table, _ = aggregate_raters(codes[full, 1:], n_cat=4)
    summary = agreement_summary(
        PatternCounts(4).update(codes), ("a", "b", "c"), CATS, IntervalConfig(n_resamples=200)
    )
    assert summary["fleiss_kappa"]["n_items"] == full.sum()
    assert summary["fleiss_kappa"]["value"] == pytest.approx(sm_fleiss(table, method="fleiss"))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 399))
def test_patterns_merge_like_one_pass(seed: int, cut: int) -> None:
    codes = raters(seed, missing=0.2)
    whole = PatternCounts(4).update(codes)
    parts = PatternCounts(4).update(codes[:cut]).merge(PatternCounts(4).update(codes[cut:]))
    assert parts.counts == whole.counts
    empty = PatternCounts(4)
    assert empty.merge(whole).counts == whole.counts == whole.merge(empty).counts


def test_kappa_is_undefined_when_nobody_varies() -> None:
    cm = np.array([[10.0, 0.0], [0.0, 0.0]])
    assert np.isnan(cohen_kappa(cm))
    patterns = np.array([[0, 0, 0]])
    assert np.isnan(fleiss_kappa(np.array([[5.0]]), patterns, 2)[0])


def test_statement_follows_the_difference_interval() -> None:
    config = IntervalConfig(n_resamples=300)
    noisy_model = raters(2, n=2000, flip=0.1)
    noisy_model[:, 0] = np.random.default_rng(3).choice(3, 2000)  # the model guesses
    worse = agreement_summary(PatternCounts(4).update(noisy_model), ("a", "b", "c"), CATS, config)
    assert worse["comparison"]["difference_ci"][1] < 0
    assert "less than they agree" in worse["comparison"]["statement"]
    # The model is one more noisy copy of the truth, like each expert: no measurable difference.
    alike = agreement_summary(
        PatternCounts(4).update(raters(4, n=2000, flip=0.15)), ("a", "b", "c"), CATS, config
    )
    low, high = alike["comparison"]["difference_ci"]
    assert low < 0 < high and "as well as" in alike["comparison"]["statement"]
