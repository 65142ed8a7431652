"""The item-history counts against a per-item reference written as loops, and the churn interval
and test against statsmodels and scipy."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from assay.core import item_history as ih

CODES = st.sampled_from([ih.RIGHT, ih.WRONG, ih.NOT_JUDGED, ih.ABSENT])
MATRICES = st.integers(1, 6).flatmap(
    lambda v: arrays(np.int8, st.tuples(st.integers(0, 40), st.just(v)), elements=CODES)
)


def _judged(row: np.ndarray) -> list[int]:
    return [int(c) for c in row if c in (ih.RIGHT, ih.WRONG)]


@settings(max_examples=200, deadline=None)
@given(MATRICES, st.data())
def test_item_lists_match_a_per_item_reference(outcomes: np.ndarray, data: st.DataObject) -> None:
    n_versions = outcomes.shape[1]
    candidate = data.draw(st.integers(0, n_versions - 1))
    broken = ih.broken_by(outcomes, candidate)
    never = ih.never_right(outcomes, min(2, n_versions))
    flips = ih.flips(outcomes)
    for i, row in enumerate(outcomes):
        earlier = _judged(row[:candidate])
        lost = row[candidate] in (ih.WRONG, ih.NOT_JUDGED)
        assert broken[i] == (bool(earlier) and all(earlier) and lost)
        judged = _judged(row)
        assert never[i] == (len(judged) >= min(2, n_versions) and ih.RIGHT not in judged)
        assert flips[i] == sum(a != b for a, b in itertools.pairwise(judged))


@settings(max_examples=100, deadline=None)
@given(MATRICES.filter(lambda m: m.shape[1] >= 2))
def test_churn_matches_statsmodels_and_scipy(outcomes: np.ndarray) -> None:
    before, after = outcomes[:, 0], outcomes[:, 1]
    c = ih.churn(before, after, 0.9)
    pairs = [(a, b) for a, b in zip(before, after, strict=True)
             if a in (ih.RIGHT, ih.WRONG) and b in (ih.RIGHT, ih.WRONG)]  # fmt: skip
    assert c.n_common == len(pairs)
    assert c.n_broken == sum(a == ih.RIGHT and b == ih.WRONG for a, b in pairs)
    assert c.n_fixed == sum(a == ih.WRONG and b == ih.RIGHT for a, b in pairs)
    if not pairs:
        assert c.rate is None and c.mcnemar_p is None
        return
    changed = c.n_broken + c.n_fixed
    low, high = proportion_confint(changed, len(pairs), alpha=0.1, method="wilson")
    assert c.rate == changed / len(pairs)
    assert np.isclose(c.ci_low, low) and np.isclose(c.ci_high, high)
    expected = binomtest(c.n_broken, changed, 0.5).pvalue if changed else 1.0
    assert np.isclose(c.mcnemar_p, expected)
