"""Binned ROC/PR-AUC against scikit-learn directly, on 1M items and several score distributions.

The bound is the README's: ROC-AUC within 1e-5 and PR-AUC within 1e-4 of scikit-learn on these
distributions (measured worst cases 2.4e-7 and 6.2e-5). Binning merges scores within 1/65,536 of
each other into ties, so the error grows when scores crowd into few bins; exact mode (the default
up to 250k items) has no such error.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from assay.core.accumulators.ranking import (
    ScoreHistogramAccumulator,
    average_precision_from,
    roc_auc_from,
)
from assay.core.batch import ScoredBatch

N = 1_000_000
ROC_BOUND = 1e-5
PR_BOUND = 1e-4


def distributions(rng: np.random.Generator) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    y = rng.random(N) < 0.3
    rare = rng.random(N) < 0.01
    yield "overlapping betas", y, np.where(y, rng.beta(3, 2, N), rng.beta(2, 3, N))
    yield "confident model", y, np.where(y, rng.beta(8, 0.3, N), rng.beta(0.3, 8, N))
    yield "rare positives", rare, np.where(rare, rng.beta(4, 2, N), rng.beta(1, 6, N))
    narrow = 0.45 + 0.1 * np.where(y, rng.beta(3, 2, N), rng.beta(2, 3, N))
    yield "scores crowded in [0.45, 0.55]", y, narrow
    yield "near zero, imbalanced", rare, np.where(rare, rng.beta(2, 50, N), rng.beta(0.5, 5000, N))
    logits = np.where(y, rng.normal(2, 2, N), rng.normal(-2, 2, N))
    yield "float32 logistic", y, (1 / (1 + np.exp(-logits))).astype(np.float32).astype(np.float64)


CASES = list(distributions(np.random.default_rng(0)))


@pytest.mark.parametrize(("name", "y", "s"), CASES, ids=[c[0] for c in CASES])
def test_binned_auc_is_within_the_stated_bound_of_scikit_learn(
    name: str, y: np.ndarray, s: np.ndarray
) -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    acc = ScoreHistogramAccumulator(("neg", "pos"), mode="binned", positive_index=1)
    state = acc.empty()
    scores = np.stack([1 - s, s], axis=1)
    for start in range(0, N, 65_536):
        rows = slice(start, start + 65_536)
        labels = y[rows].astype(np.int64)
        state = acc.update(state, ScoredBatch(labels, labels, scores[rows], ()))
    _, run = acc.compact(state)
    auc = float(roc_auc_from(run.pos, run.neg))
    ap = float(average_precision_from(run.pos, run.neg))
    assert abs(auc - roc_auc_score(y, s)) <= ROC_BOUND, name
    assert abs(ap - average_precision_score(y, s)) <= PR_BOUND, name
    metrics = acc.finalize(state).metrics
    for metric, value in (("roc_auc", auc), ("pr_auc", ap)):
        m = metrics[metric]
        assert m.value == value and m.ci_low is not None and m.ci_high is not None
        # Strictly inside, and by the bootstrap itself: not merely widened to reach the estimate.
        assert m.ci_low < value < m.ci_high and m.method == "bootstrap", (metric, m)
