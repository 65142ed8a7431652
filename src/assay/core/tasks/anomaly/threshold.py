"""calibrate_threshold: an anomaly score threshold with a stated false-alarm rate, on evidence.

An anomaly model scores each image; an image is called anomalous when its score is above the
threshold. The threshold is chosen on a declared calibration split of good items, never on the
test items it is judged on, by the conformal rule: with n calibration scores sorted, the
threshold is the k-th smallest, k = ceil((n + 1) (1 - target)). For a new good item drawn like
the calibration ones, the chance of a false alarm is then at most ``target`` (at most
1 - k / (n + 1), exactly that without ties), whatever the score distribution. Fewer than
1 / target - 1 calibration items cannot promise the rate at all, and are refused.

The rates the threshold gives on the test items are then reported with Wilson intervals, and
the F1 at the threshold beside F1-max, the best F1 any threshold would give on those same test
items (an optimistic figure: it looks at the answers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.errors import InputError
from assay.core.intervals import wilson_interval

F = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Threshold:
    value: float
    target_false_alarm_rate: float
    n_calibration: int
    # The promised bound on a new good item's false-alarm chance: 1 - k / (n + 1).
    false_alarm_bound: float
    method: str = "conformal: the ceil((n + 1)(1 - target))-th smallest calibration score"

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "method": self.method,
            "target_false_alarm_rate": self.target_false_alarm_rate,
            "n_calibration": self.n_calibration,
            "false_alarm_bound": self.false_alarm_bound,
        }


def calibrate_threshold(good_scores: F, target: float) -> Threshold:
    """The threshold above which an image is anomalous, from good calibration items' scores."""
    if not 0 < target < 1:
        raise InputError(f"target false-alarm rate must be between 0 and 1, not {target}")
    scores = np.asarray(good_scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise InputError("the calibration scores include NaN or infinite values")
    n = scores.size
    k = math.ceil((n + 1) * (1 - target))
    if k > n:
        need = math.ceil(1 / target - 1)
        raise InputError(
            f"{n} good calibration items cannot promise a {target:.2%} false-alarm rate: "
            f"at least {need} are needed"
        )
    value = float(np.partition(scores, k - 1)[k - 1])
    return Threshold(value, target, n, 1 - k / (n + 1))


def rates_at(threshold: float, scores: F, anomalous: B, confidence: float = 0.95) -> dict[str, Any]:
    """What the threshold gives on test items: false-alarm and miss rates with intervals,
    precision, recall and F1 of the anomalous class, and F1-max over every threshold."""
    called = scores > threshold
    good, bad = ~anomalous, anomalous
    false_alarms, n_good = int((called & good).sum()), int(good.sum())
    misses, n_bad = int((~called & bad).sum()), int(bad.sum())
    tp = n_bad - misses
    precision = tp / (tp + false_alarms) if tp + false_alarms else None
    recall = tp / n_bad if n_bad else None
    f1 = 2 * tp / (2 * tp + false_alarms + misses) if n_bad or false_alarms else None
    return {
        "false_alarm_rate": _rate(false_alarms, n_good, confidence),
        "miss_rate": _rate(misses, n_bad, confidence),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "f1_max": f1_max(scores, anomalous),
    }


def _rate(count: int, n: int, confidence: float) -> dict[str, Any]:
    low, high = wilson_interval(count, n, confidence)
    return {
        "value": count / n if n else None,
        "ci_low": low if n else None,
        "ci_high": high if n else None,
        "count": count,
        "n": n,
    }


def f1_max(scores: F, anomalous: B) -> float | None:
    """The best F1 of the anomalous class over every threshold (items above it called anomalous),
    including calling every item anomalous."""
    n_bad = int(anomalous.sum())
    if n_bad == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    s, a = scores[order], anomalous[order]
    tp = np.cumsum(a)
    fp = np.cumsum(~a)
    # Only the last item of a run of equal scores is a threshold one can set.
    ends = np.append(s[1:] != s[:-1], True)
    f1 = 2 * tp[ends] / (tp[ends] + fp[ends] + n_bad)
    return float(f1.max())


def f1_max_from(pos: F, neg: F) -> F:
    """F1-max per row of histograms with ascending scores (``f1_max`` on counts): over every
    threshold, calling the items at or above it anomalous."""
    tp = np.cumsum(pos[:, ::-1], axis=1)
    fp = np.cumsum(neg[:, ::-1], axis=1)
    n_bad = pos.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(n_bad > 0, 2 * tp / (tp + fp + n_bad), np.nan)
    out: F = np.nanmax(np.where(np.isnan(f1), -np.inf, f1), axis=1)
    return np.where(np.isinf(out), np.nan, out)
