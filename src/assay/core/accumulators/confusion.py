"""Metrics that are functions of the confusion matrix: accuracy, per-class P/R/F1, MCC, kappa.

Each formula below takes counts of shape [..., K, K] (rows = expert label, columns = predicted) so
that the same code gives the point estimate (one matrix) and the bootstrap replicates (a stack of
resampled matrices). Averages follow scikit-learn's conventions: macro and weighted averages run over
the classes that occur as label or prediction, and a ratio with a zero denominator counts as 0 in
an average while the per-class value is reported as undefined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from assay.core.accumulators.base import Finalized
from assay.core.batch import ScoredBatch
from assay.core.intervals import (
    DEFAULT_INTERVALS,
    PSEUDO_ITEM,
    IntervalConfig,
    draw_multinomial,
    smoothed_interval,
    wilson_interval,
)
from assay.core.metric_value import MetricValue

F = npt.NDArray[np.float64]


def _div(num: F, den: F) -> F:
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def _parts(c: npt.NDArray[np.int64]) -> tuple[F, F, F, F]:
    cf = c.astype(np.float64)
    tp = np.diagonal(cf, axis1=-2, axis2=-1)
    support = cf.sum(axis=-1)
    predicted = cf.sum(axis=-2)
    n = support.sum(axis=-1)
    return tp, support, predicted, n


def accuracy(c: npt.NDArray[np.int64]) -> F:
    tp, _, _, n = _parts(c)
    return _div(tp.sum(axis=-1), n)


def precision(c: npt.NDArray[np.int64]) -> F:
    tp, _, predicted, _ = _parts(c)
    return _div(tp, predicted)


def recall(c: npt.NDArray[np.int64]) -> F:
    tp, support, _, _ = _parts(c)
    return _div(tp, support)


def f1(c: npt.NDArray[np.int64]) -> F:
    tp, support, predicted, _ = _parts(c)
    return _div(2.0 * tp, support + predicted)


def _macro(per_class: F, c: npt.NDArray[np.int64]) -> F:
    _, support, predicted, _ = _parts(c)
    present = (support + predicted) > 0
    values = np.where(present, np.nan_to_num(per_class, nan=0.0), 0.0)
    return _div(values.sum(axis=-1), present.sum(axis=-1).astype(np.float64))


def _weighted(per_class: F, c: npt.NDArray[np.int64]) -> F:
    _, support, _, _ = _parts(c)
    values = np.nan_to_num(per_class, nan=0.0) * support
    return _div(values.sum(axis=-1), support.sum(axis=-1))


def balanced_accuracy(c: npt.NDArray[np.int64]) -> F:
    r = recall(c)
    counted = np.isfinite(r)
    return _div(np.where(counted, r, 0.0).sum(axis=-1), counted.sum(axis=-1).astype(np.float64))


def matthews_corrcoef(c: npt.NDArray[np.int64]) -> F:
    tp, support, predicted, n = _parts(c)
    correct = tp.sum(axis=-1)
    cov_tp = correct * n - (support * predicted).sum(axis=-1)
    cov_pp = n * n - (predicted * predicted).sum(axis=-1)
    cov_tt = n * n - (support * support).sum(axis=-1)
    den = np.sqrt(cov_pp * cov_tt)
    # scikit-learn's convention: MCC is 0 when either marginal is constant.
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F = np.where(
            den > 0, cov_tp / np.where(den > 0, den, 1.0), np.where(n > 0, 0.0, np.nan)
        )
    return out


def cohen_kappa(c: npt.NDArray[np.int64]) -> F:
    tp, support, predicted, n = _parts(c)
    po = _div(tp.sum(axis=-1), n)
    pe = _div((support * predicted).sum(axis=-1), n * n)
    return _div(po - pe, 1.0 - pe)


def false_alarm_rate(c: npt.NDArray[np.int64], negative: int) -> F:
    """Share of good items (expert label ``negative``) that the model flagged as anything else."""
    _, support, _, _ = _parts(c)
    cf = c.astype(np.float64)
    return _div(support[..., negative] - cf[..., negative, negative], support[..., negative])


def missed_defect_rate(c: npt.NDArray[np.int64], negative: int) -> F:
    """Share of defective items (any other expert label) that the model called good."""
    cf = c.astype(np.float64)
    _, support, _, _ = _parts(c)
    defects = support.sum(axis=-1) - support[..., negative]
    missed = cf[..., :, negative].sum(axis=-1) - cf[..., negative, negative]
    return _div(missed, defects)


CHANCE_CORRECTED = ("cohen_kappa", "mcc")
ONE_ANSWER = (
    "the model gave every item one class: no better than chance by construction, in every "
    "resample of the items"
)
ONE_EXPERT_CLASS = (
    "the experts gave every item one class: agreement beyond chance cannot be measured"
)
NO_ITEM = "no item was judged"
NO_OTHER_CLASS = (
    "no item of another class: no item could be called this class wrongly, so this precision "
    "cannot fall below 1"
)

HEADLINE: dict[str, Callable[[npt.NDArray[np.int64]], F]] = {
    "balanced_accuracy": balanced_accuracy,
    "macro_precision": lambda c: _macro(precision(c), c),
    "macro_recall": lambda c: _macro(recall(c), c),
    "macro_f1": lambda c: _macro(f1(c), c),
    "weighted_precision": lambda c: _weighted(precision(c), c),
    "weighted_recall": lambda c: _weighted(recall(c), c),
    "weighted_f1": lambda c: _weighted(f1(c), c),
    "mcc": matthews_corrcoef,
    "cohen_kappa": cohen_kappa,
}


def with_pseudo_errors(c: npt.NDArray[np.int64]) -> F:
    """The counts with half an item added, for each expert class present, to its row's errors
    (spread over the other classes): the resampling counterpart of Agresti and Coull's added
    failures, and of the pseudo-discordance of paired comparisons (``core/comparison.py``)."""
    k = c.shape[-1]
    smoothed = c.astype(np.float64)
    if k < 2:
        return smoothed
    for y in np.flatnonzero(c.sum(axis=-1) > 0):
        others = [j for j in range(k) if j != y]
        smoothed[y, others] += PSEUDO_ITEM / len(others)
    return smoothed


# Every headline metric that is a function of the confusion matrix alone.
CONFUSION_METRICS = ("accuracy", *HEADLINE)
RATE_METRICS = ("false_alarm_rate", "missed_defect_rate")  # need the good class


@dataclass(frozen=True)
class ConfusionAccumulator:
    """Counts of (expert label, predicted class) pairs; everything confusion-based derives from it."""

    labels: tuple[str, ...]
    intervals: IntervalConfig = DEFAULT_INTERVALS
    # The "good" class, when known: enables false_alarm_rate and missed_defect_rate.
    negative_index: int | None = None
    name: str = "confusion"

    def empty(self) -> npt.NDArray[np.int64]:
        k = len(self.labels)
        return np.zeros((k, k), dtype=np.int64)

    def update(self, state: npt.NDArray[np.int64], batch: ScoredBatch) -> npt.NDArray[np.int64]:
        k = len(self.labels)
        flat = batch.y_true * k + batch.y_pred
        return state + np.bincount(flat, minlength=k * k).reshape(k, k)

    def merge(self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return a + b

    def finalize(self, state: npt.NDArray[np.int64]) -> Finalized:
        conf = self.intervals.confidence
        c = state
        tp, support, predicted, n = _parts(c)
        out = Finalized()
        out.extras["confusion_matrix"] = c.tolist()
        out.metrics["accuracy"] = MetricValue.of(
            float(accuracy(c)), wilson_interval(float(tp.sum()), float(n), conf), "wilson"
        )
        # One set of resampled matrices serves every bootstrap metric of this state. A second set
        # is drawn from the counts with half an error added per expert class, and each interval
        # is the hull of both: every resample of a perfect handful is perfect, and an interval
        # [1, 1] from four right answers passed `macro_f1 >= 0.9` (Wilson gives 4/4 [0.51, 1]).
        # The hull only widens, by about half an error's share of the rarer class (as Wilson's
        # interval of a class's recall does).
        draws = draw_multinomial(c, self.intervals, salt=self.name).reshape(-1, *c.shape)
        smoothed = draw_multinomial(
            with_pseudo_errors(c), self.intervals, salt=self.name + ":pseudo", total=int(n)
        ).reshape(-1, *c.shape)

        def interval(fn: Callable[[npt.NDArray[np.int64]], F]) -> tuple[float, float]:
            return smoothed_interval(fn(draws), fn(smoothed), conf)

        # With one expert class, kappa and MCC are 0 (or undefined) by construction, in every
        # resample too: an interval [0, 0] would read as evidence of agreement no better than
        # chance. There is no chance agreement to beat; the value stays (scikit-learn's), the
        # interval goes, and the note says why.
        one_class = int((support > 0).sum()) < 2
        # A model that gave every item one class agrees with the experts no better than chance
        # in every resample of the items: kappa and MCC are 0, exactly. The pseudo-errors'
        # resamples (which give it other classes) lifted the interval's top above 0, and a
        # constant model was 'too few items to tell' instead of failing `cohen_kappa > 0`.
        one_answer = int((predicted > 0).sum()) < 2
        for name, fn in HEADLINE.items():
            if one_class and name in CHANCE_CORRECTED:
                # (none judged: the experts' classes were never counted; a newcomer was told
                # the experts gave one class to a set with 15 fails and 335 passes)
                note = NO_ITEM if n == 0 else ONE_EXPERT_CLASS
                out.metrics[name] = MetricValue.of(float(fn(c)), note=note)
                continue
            if one_answer and name in CHANCE_CORRECTED:
                value = float(fn(c))
                out.metrics[name] = MetricValue.of(value, (value, value), "exact", ONE_ANSWER)
                continue
            out.metrics[name] = MetricValue.of(float(fn(c)), interval(fn), "bootstrap")
        if self.negative_index is not None:
            neg = self.negative_index
            good, flagged = float(support[neg]), float(support[neg] - c[neg, neg])
            defects = float(n - support[neg])
            missed = float(c[:, neg].sum() - c[neg, neg])
            out.metrics["false_alarm_rate"] = MetricValue.of(
                float(false_alarm_rate(c, neg)), wilson_interval(flagged, good, conf), "wilson"
            )
            out.metrics["missed_defect_rate"] = MetricValue.of(
                float(missed_defect_rate(c, neg)), wilson_interval(missed, defects, conf), "wilson"
            )
        prec, rec, f1s = precision(c), recall(c), f1(c)
        f1_draws, f1_smoothed = f1(draws), f1(smoothed)
        for k, label in enumerate(self.labels):
            f1_interval = smoothed_interval(f1_draws[:, k], f1_smoothed[:, k], conf)
            # With no item of another class no item could be called this class wrongly: the
            # precision is 1 whatever the model does (a review's detector missing 70% of the
            # boxes passed precision[defect] >= 0.9 on a set of defects only, confidently).
            # Its value stays (scikit-learn's); without an interval, a check cannot pass on it.
            cannot_fall = n - support[k] == 0 and predicted[k] > 0
            out.per_class[label] = {
                "precision": MetricValue.of(
                    prec[k],
                    None
                    if cannot_fall
                    else wilson_interval(float(tp[k]), float(predicted[k]), conf),
                    None if cannot_fall else "wilson",
                    note=NO_OTHER_CLASS
                    if cannot_fall
                    else None
                    if predicted[k]
                    else "no item was predicted as this class",
                ),
                "recall": MetricValue.of(
                    rec[k],
                    wilson_interval(float(tp[k]), float(support[k]), conf),
                    "wilson",
                    note=None if support[k] else "no item has this expert label",
                ),
                "f1": MetricValue.of(f1s[k], f1_interval, "bootstrap"),
                "support": MetricValue.of(float(support[k])),
            }
        return out


def metric_function(
    name: str, labels: tuple[str, ...], negative: int | None
) -> Callable[[npt.NDArray[np.int64]], F] | None:
    """The confusion-matrix function behind a metric name (``recall[void]`` for a class), or None."""
    if name == "accuracy":
        return accuracy
    if name in HEADLINE:
        return HEADLINE[name]
    if name in ("false_alarm_rate", "missed_defect_rate"):
        if negative is None:
            return None
        fn = false_alarm_rate if name == "false_alarm_rate" else missed_defect_rate
        return lambda c: fn(c, negative)
    if "[" in name and name.endswith("]"):
        base, label = name[:-1].split("[", 1)
        per_class = {"precision": precision, "recall": recall, "f1": f1}.get(base)
        if per_class is None or label not in labels:
            return None
        k = labels.index(label)
        return lambda c: per_class(c)[..., k]
    return None
