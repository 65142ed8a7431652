"""Anomaly thresholds: the promised false-alarm rate holds, and the rates equal scikit-learn's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.errors import InputError
from assay.core.tasks.anomaly.threshold import calibrate_threshold, f1_max, rates_at


def test_the_false_alarm_rate_on_new_good_items_is_at_most_the_target() -> None:
    """Over many calibration splits, a new good item's chance of a false alarm averages to the
    promised bound (0.05 here), whatever the model's score distribution (lognormal here)."""
    rng = np.random.default_rng(0)
    chances = []
    for _ in range(3000):
        calibration = rng.lognormal(0, 1, 199)
        threshold = calibrate_threshold(calibration, 0.05)
        z = (math.log(threshold.value) - 0) / 1
        chances.append(0.5 * math.erfc(z / math.sqrt(2)))  # P(new score > threshold)
        assert threshold.false_alarm_bound == pytest.approx(0.05)
    assert np.mean(chances) == pytest.approx(0.05, abs=0.003)


def test_too_few_calibration_items_or_bad_scores_are_refused() -> None:
    with pytest.raises(InputError, match="at least 19 are needed"):
        calibrate_threshold(np.arange(10.0), 0.05)
    with pytest.raises(InputError, match="NaN"):
        calibrate_threshold(np.array([0.1, np.nan] * 50), 0.05)
    with pytest.raises(InputError, match="between 0 and 1"):
        calibrate_threshold(np.arange(100.0), 0.0)
    assert calibrate_threshold(np.arange(19.0), 0.05).value == 18.0


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.booleans())
def test_rates_and_f1_max_equal_scikit_learn(seed: int, ties: bool) -> None:
    from sklearn.metrics import f1_score, precision_recall_curve, precision_score, recall_score

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    anomalous = rng.random(n) < rng.uniform(0.05, 0.6)
    scores = rng.normal(0, 1, n) + anomalous * rng.uniform(0, 3)
    if ties:
        scores = np.round(scores, 1)
    threshold = float(np.quantile(scores, 0.7))
    found = rates_at(threshold, scores, anomalous)
    called = scores > threshold
    if anomalous.any():
        assert found["recall"] == pytest.approx(recall_score(anomalous, called))
        assert found["f1"] == pytest.approx(f1_score(anomalous, called))
        precision, recall, _ = precision_recall_curve(anomalous, scores)
        with np.errstate(invalid="ignore", divide="ignore"):
            best = np.nanmax(2 * precision * recall / (precision + recall))
        assert f1_max(scores, anomalous) == pytest.approx(best)
    if called.any():
        assert found["precision"] == pytest.approx(precision_score(anomalous, called))
    good = ~anomalous
    assert found["false_alarm_rate"]["count"] == int((called & good).sum())
    if good.any():
        rate = found["false_alarm_rate"]
        assert rate["ci_low"] <= rate["value"] <= rate["ci_high"]
