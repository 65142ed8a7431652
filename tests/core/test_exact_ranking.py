"""Exact ROC-AUC and average precision on large inputs: scikit-learn's values, and a run behind
the curves whose bins start at actual scores with exact counts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from assay.core.accumulators import ranking
from assay.core.accumulators.ranking import ScoreHistogramAccumulator
from assay.core.batch import make_batch
from assay.core.intervals import IntervalConfig

LABELS = ("a", "b", "c")


def scored(n: int, seed: int, boost: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels and softmax scores of three classes, the true class's logit raised by ``boost``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), y] += boost
    return y, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def streamed(acc: ScoreHistogramAccumulator, y: np.ndarray, p: np.ndarray, parts: int) -> Any:
    """The accumulator's state after the items arrive in ``parts`` batches."""
    state = acc.empty()
    for chunk in np.array_split(np.arange(y.size), parts):
        state = acc.update(state, make_batch(y[chunk], p[chunk]))
    return state


@pytest.mark.parametrize("coarse", [False, True])
def test_exact_values_equal_scikit_learn_with_a_full_or_a_coarse_run(
    coarse: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if coarse:  # what a run of more than a million items does, on 30,000
        monkeypatch.setattr(ranking, "FULL_RUN_ITEMS", 1000)
        monkeypatch.setattr(ranking, "RUN_BINS", 64)
    n = 30_000
    y, p = scored(n, seed=5, boost=1.0)
    p[: n // 3] = p[: n // 3].round(2)  # ties, many of them
    p /= p.sum(axis=1, keepdims=True)
    acc = ScoreHistogramAccumulator(LABELS, IntervalConfig(n_resamples=200))
    state = streamed(acc, y, p, 7)
    out = acc.finalize(state)
    runs = acc.compact(state)
    for c, label in enumerate(LABELS):
        truth = y == c
        assert out.per_class[label]["roc_auc"].value == pytest.approx(
            roc_auc_score(truth, p[:, c]), abs=1e-12
        )
        assert out.per_class[label]["pr_auc"].value == pytest.approx(
            average_precision_score(truth, p[:, c]), abs=1e-12
        )
        run = runs[c]
        assert np.all(np.diff(run.values) > 0)
        assert (run.size <= 2 * 64 + 2) if coarse else (run.size == np.unique(p[:, c]).size)
        # Every bin starts at an actual score, and the counts at and above it are exact.
        assert np.isin(run.values, p[:, c]).all()
        above_pos = np.cumsum(run.pos[::-1])[::-1]
        above_neg = np.cumsum(run.neg[::-1])[::-1]
        for i in range(0, run.size, max(1, run.size // 50)):
            v = run.values[i]
            assert above_pos[i] == np.sum(truth & (p[:, c] >= v))
            assert above_neg[i] == np.sum(~truth & (p[:, c] >= v))
        # The interval still contains the estimate.
        m = out.per_class[label]["roc_auc"]
        assert m.ci_low is not None and m.ci_high is not None and m.value is not None
        assert m.ci_low <= m.value <= m.ci_high


def test_a_class_without_positives_has_no_auc() -> None:
    acc = ScoreHistogramAccumulator(LABELS, IntervalConfig(n_resamples=200))
    y = np.zeros(50, int)
    p = np.tile([0.6, 0.3, 0.1], (50, 1))
    out = acc.finalize(acc.update(acc.empty(), make_batch(y, p)))
    assert out.per_class["b"]["roc_auc"].value is None
    assert out.per_class["a"]["roc_auc"].value is None  # every item is an "a": no negatives


def test_the_defect_sweep_of_a_multiclass_model_counts_exactly_on_a_coarse_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by a hostile review: flipping the good class's coarse bins put each threshold at the
    top of its bin, and every sweep point counted items below it."""
    monkeypatch.setattr(ranking, "FULL_RUN_ITEMS", 1000)
    monkeypatch.setattr(ranking, "RUN_BINS", 64)
    y, p = scored(20_000, seed=11, boost=1.2)
    acc = ScoreHistogramAccumulator(
        LABELS, IntervalConfig(n_resamples=200), negative_index=2
    )  # "c" is the good class
    s = acc.finalize(streamed(acc, y, p, 5)).extras["operating_sweep"].sweep
    defect_score, defective = 1.0 - p[:, 2], y != 2
    assert len(s) > 20
    for t, tp, fp in zip(s.threshold, s.tp, s.fp, strict=True):
        assert tp == np.sum(defective & (defect_score >= t))
        assert fp == np.sum(~defective & (defect_score >= t))
