"""build_evidence: turn merged comparison states and a candidate's metrics into verdict Evidence."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from assay.core.accumulators.confusion import ConfusionAccumulator
from assay.core.comparison import (
    OVERALL,
    Delta,
    SliceKey,
    confusion_metrics,
    paired_deltas,
    slice_name,
)
from assay.core.intervals import (
    IntervalConfig,
)
from assay.core.metric_value import MetricValue
from assay.core.policy import SLICEABLE
from assay.core.verdict import Evidence

I64 = np.ndarray


def flatten_metrics(
    metrics: Mapping[str, MetricValue], per_class: Mapping[str, Mapping[str, MetricValue]]
) -> dict[str, MetricValue]:
    """Headline metrics plus per-class ones named ``recall[void]``."""
    out = dict(metrics)
    for label, values in per_class.items():
        for name, value in values.items():
            out[f"{name}[{label}]"] = value
    return out


def slice_metrics(
    confusion: I64,
    labels: tuple[str, ...],
    negative: int | None,
    config: IntervalConfig,
    key: SliceKey,
) -> dict[str, MetricValue]:
    """The sliceable metrics of one slice's confusion matrix, with the intervals the whole
    dataset's get (Wilson for accuracy and the rates: a bootstrap of 0 of 2 defects missed is
    [0, 0], a confident-looking interval on two items)."""
    acc = ConfusionAccumulator(labels, config, negative, name="slice:" + slice_name(key))
    with np.errstate(invalid="ignore", divide="ignore"):
        found = acc.finalize(confusion).metrics
    return {name: found[name] for name in sorted(SLICEABLE) if name in found}


def build_evidence(
    labels: tuple[str, ...],
    negative: int | None,
    joint: Mapping[SliceKey, I64],
    candidate: Mapping[str, MetricValue],
    config: IntervalConfig,
    has_baseline: bool,
    extra_deltas: Mapping[str, Delta] | None = None,
) -> Evidence:
    """Evidence over the whole dataset and each slice: candidate metrics and paired deltas.

    ``joint`` holds the (expert x baseline x candidate) tables; without a baseline the candidate is
    paired with itself, so its confusion matrix is still the table's marginal.
    """
    cand_metrics: dict[SliceKey, dict[str, MetricValue]] = {OVERALL: dict(candidate)}
    sizes = {key: int(table.sum()) for key, table in joint.items()}
    deltas: dict[SliceKey, dict[str, Delta]] = {}
    metrics = confusion_metrics(labels, negative)
    for key, table in joint.items():
        if key != OVERALL:
            cand_metrics[key] = slice_metrics(table.sum(axis=1), labels, negative, config, key)
        if has_baseline:
            deltas[key] = paired_deltas(table, metrics, config, key)
    if has_baseline and extra_deltas:
        deltas.setdefault(OVERALL, {}).update(extra_deltas)
    return Evidence(labels, cand_metrics, sizes, deltas)
