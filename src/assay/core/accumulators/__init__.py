"""Mergeable metric accumulators and the default set used by a classification validation."""

from __future__ import annotations

from typing import Any, Literal

from assay.core.accumulators.base import Accumulator, Finalized
from assay.core.accumulators.calibration import CalibrationAccumulator
from assay.core.accumulators.confusion import ConfusionAccumulator
from assay.core.accumulators.examples import ErrorExamplesAccumulator
from assay.core.accumulators.losses import MeanLossAccumulator, brier_per_item, log_loss_per_item
from assay.core.accumulators.ranking import ScoreHistogramAccumulator
from assay.core.intervals import DEFAULT_INTERVALS, IntervalConfig

__all__ = [
    "Accumulator",
    "CalibrationAccumulator",
    "ConfusionAccumulator",
    "ErrorExamplesAccumulator",
    "Finalized",
    "MeanLossAccumulator",
    "ScoreHistogramAccumulator",
    "classification_accumulators",
]


def classification_accumulators(
    labels: tuple[str, ...],
    intervals: IntervalConfig = DEFAULT_INTERVALS,
    positive_index: int | None = None,
    auc_mode: Literal["exact", "binned"] = "exact",
    n_examples: int = 24,
    negative_index: int | None = None,
) -> list[Accumulator[Any]]:
    """Every accumulator a classification validation runs, in report order."""
    return [
        ConfusionAccumulator(labels, intervals, negative_index),
        ScoreHistogramAccumulator(
            labels,
            intervals,
            mode=auc_mode,
            positive_index=positive_index,
            negative_index=negative_index,
        ),
        MeanLossAccumulator("log_loss", log_loss_per_item, intervals),
        MeanLossAccumulator("brier_score", brier_per_item, intervals),
        CalibrationAccumulator(intervals),
        ErrorExamplesAccumulator(labels, k=n_examples),
    ]
