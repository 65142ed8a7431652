"""Paired ECE change: estimates equal each model's own ECE on the paired items, the interval
matches a paired bootstrap over items, and a handful of items gives none."""

from __future__ import annotations

import numpy as np
import pytest

from assay.core.accumulators.calibration import CalibrationAccumulator
from assay.core.batch import ScoredBatch
from assay.core.comparison import Delta, LossDifferenceAccumulator
from assay.core.intervals import IntervalConfig, percentile_interval
from assay.core.paired_calibration import PairedCalibrationAccumulator


def batches(rng: np.random.Generator, n: int) -> tuple[ScoredBatch, ScoredBatch]:
    """Baseline and candidate on the same items: the baseline calibrated (labels drawn from its
    own probabilities), the candidate the same ranking made overconfident."""
    p = rng.beta(2, 2, n)
    y = (rng.random(n) < p).astype(np.int64)
    sharp = p**4 / (p**4 + (1 - p) ** 4)
    out = []
    for q in (p, sharp):
        scores = np.c_[1 - q, q]
        out.append(ScoredBatch(y, scores.argmax(1), scores))
    return out[0], out[1]


def take(batch: ScoredBatch, index: np.ndarray | slice) -> ScoredBatch:
    return ScoredBatch(batch.y_true[index], batch.y_pred[index], batch.scores[index])


def ece(batch: ScoredBatch) -> float:
    acc = CalibrationAccumulator(IntervalConfig(n_resamples=10))
    value = acc.finalize(acc.update(acc.empty(), batch)).metrics["ece"].value
    assert value is not None
    return value


def paired(base: ScoredBatch, cand: ScoredBatch, config: IntervalConfig) -> Delta:
    acc = PairedCalibrationAccumulator()
    half = base.n_items // 2
    first, rest = slice(None, half), slice(half, None)
    parts = [
        acc.update(acc.empty(), take(base, first), take(cand, first)),
        acc.update(acc.empty(), take(base, rest), take(cand, rest)),
    ]
    return acc.delta(acc.merge(*parts), config)


def test_estimates_are_each_models_ece_and_the_interval_a_paired_item_bootstrap() -> None:
    rng = np.random.default_rng(6)
    base, cand = batches(rng, 800)
    d = paired(base, cand, IntervalConfig(n_resamples=2000))
    assert d.baseline == pytest.approx(ece(base), abs=1e-12)
    assert d.candidate == pytest.approx(ece(cand), abs=1e-12)
    assert d.delta is not None and d.delta > 0.05  # the overconfident candidate is worse
    reps = []
    for _ in range(2000):
        i = rng.integers(0, base.n_items, base.n_items)
        reps.append(ece(take(cand, i)) - ece(take(base, i)))
    low, high = percentile_interval(np.array(reps), 0.95)
    width = high - low
    assert d.ci_low is not None and d.ci_high is not None
    assert d.ci_low == pytest.approx(low, abs=0.15 * width)
    assert d.ci_high == pytest.approx(high, abs=0.15 * width)
    assert d.ci_low > 0


def test_a_handful_of_items_gives_no_interval_for_ece_or_the_losses() -> None:
    """Four items whose differences are all equal resampled to [d, d] and passed "no log
    loss regression"; below 30 paired items neither change has an interval."""
    rng = np.random.default_rng(1)
    base, cand = batches(rng, 12)
    d = paired(base, cand, IntervalConfig(n_resamples=200))
    assert d.delta is not None and not d.has_interval
    from assay.core.accumulators.losses import log_loss_per_item

    losses = LossDifferenceAccumulator("log_loss", log_loss_per_item)
    loss = losses.delta(losses.update(losses.empty(), base, cand), IntervalConfig())
    assert loss.delta is not None and not loss.has_interval
