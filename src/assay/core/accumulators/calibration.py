"""Expected calibration error and the reliability diagram, from confidence bins.

Per equal-width bin of the predicted class's score, the state counts items that were right and
wrong and sums their confidences separately, so the bootstrap can resample (bin, right/wrong)
cells. ECE = sum over bins of |right - sum of confidences| / n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from assay.core.accumulators.base import Finalized
from assay.core.batch import ScoredBatch
from assay.core.intervals import (
    DEFAULT_INTERVALS,
    FEW_ITEMS,
    MIN_MEAN_ITEMS,
    IntervalConfig,
    draw_multinomial,
    percentile_interval,
)
from assay.core.metric_value import MetricValue

F = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CalibrationState:
    counts: npt.NDArray[np.int64]  # [bins, 2]: column 0 wrong, column 1 right
    confidence_sums: F  # [bins, 2]


def bin_index(confidence: F, n_bins: int) -> npt.NDArray[np.int64]:
    """Bins are (lo, hi]; a confidence of exactly 0 falls in the first bin."""
    idx = np.ceil(confidence * n_bins).astype(np.int64) - 1
    return np.clip(idx, 0, n_bins - 1)


@dataclass(frozen=True)
class CalibrationAccumulator:
    """Top-label calibration: does a 90% confident prediction come true 90% of the time?"""

    intervals: IntervalConfig = DEFAULT_INTERVALS
    n_bins: int = 15
    name: str = "calibration"

    def empty(self) -> CalibrationState:
        return CalibrationState(
            np.zeros((self.n_bins, 2), np.int64), np.zeros((self.n_bins, 2), np.float64)
        )

    def update(self, state: CalibrationState, batch: ScoredBatch) -> CalibrationState:
        if batch.n_items == 0:
            return state
        conf = batch.confidence
        correct = (batch.y_true == batch.y_pred).astype(np.int64)
        cell = bin_index(conf, self.n_bins) * 2 + correct
        size = self.n_bins * 2
        return CalibrationState(
            state.counts + np.bincount(cell, minlength=size).reshape(self.n_bins, 2),
            state.confidence_sums
            + np.bincount(cell, weights=conf, minlength=size).reshape(self.n_bins, 2),
        )

    def merge(self, a: CalibrationState, b: CalibrationState) -> CalibrationState:
        return CalibrationState(a.counts + b.counts, a.confidence_sums + b.confidence_sums)

    def finalize(self, state: CalibrationState) -> Finalized:
        counts = state.counts
        n = int(counts.sum())
        if n == 0:
            return Finalized(metrics={"ece": MetricValue.of(None, note="no judged items")})
        per_bin = counts.sum(axis=1)
        right = counts[:, 1].astype(np.float64)
        conf_sum = state.confidence_sums.sum(axis=1)
        ece = float(np.abs(right - conf_sum).sum() / n)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_conf = np.where(counts > 0, state.confidence_sums / np.maximum(counts, 1), 0.0)
        draws = draw_multinomial(counts, self.intervals, salt=self.name).reshape(-1, self.n_bins, 2)
        rep_right = draws[:, :, 1].astype(np.float64)
        rep_conf = (draws * mean_conf).sum(axis=2)
        replicates = np.abs(rep_right - rep_conf).sum(axis=1) / n
        edges = np.linspace(0.0, 1.0, self.n_bins + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            accuracy = np.where(per_bin > 0, right / np.maximum(per_bin, 1), np.nan)
            avg_conf = np.where(per_bin > 0, conf_sum / np.maximum(per_bin, 1), np.nan)
        reliability = [
            {
                "bin_low": float(edges[b]),
                "bin_high": float(edges[b + 1]),
                "n_items": int(per_bin[b]),
                "accuracy": None if per_bin[b] == 0 else float(accuracy[b]),
                "mean_confidence": None if per_bin[b] == 0 else float(avg_conf[b]),
            }
            for b in range(self.n_bins)
        ]
        interval = (
            MetricValue.of(ece, note=FEW_ITEMS)
            if n < MIN_MEAN_ITEMS
            else MetricValue.of(
                ece, percentile_interval(replicates, self.intervals.confidence), "bootstrap"
            )
        )
        return Finalized(metrics={"ece": interval}, extras={"reliability": reliability})
