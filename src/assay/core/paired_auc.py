"""Paired ROC-AUC change: candidate minus baseline on the same items, with DeLong's interval.

DeLong, DeLong and Clarke-Pearson (1988): the AUC is a two-sample U-statistic, each positive's
*placement* (the share of negatives it outscores, ties counting half) averages to it, as does each
negative's. The two models' placements on the same items give the covariance of their AUCs, hence
the variance of the difference, without resampling and from exact scores (what pROC's
``roc.test(paired=TRUE)`` computes). Multi-class ROC-AUC is Assay's macro one-vs-rest average; its
change is the mean of the classes' changes, and its variance is taken from each item's influence
on that mean (an item is a positive of one class and a negative of the others, so the classes'
changes are correlated, which this keeps).

The state keeps the paired items' labels and both models' scores, merged by concatenation, as the
exact single-model ranking state keeps its scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
# Fewer positives or negatives than this and the normal interval means little (both models
# separating five items perfectly give a variance of 0, an interval [0, 0]): no interval.
MIN_PER_SIDE = 10


@dataclass
class PairedScoresState:
    labels: list[I64] = field(default_factory=list)
    candidate: list[F] = field(default_factory=list)
    baseline: list[F] = field(default_factory=list)

    def arrays(self, k: int) -> tuple[I64, F, F]:
        """The paired items' labels and both models' [items, k] scores, joined."""
        y = np.concatenate(self.labels) if self.labels else np.empty(0, np.int64)
        cand = np.concatenate(self.candidate) if self.candidate else np.empty((0, k))
        base = np.concatenate(self.baseline) if self.baseline else np.empty((0, k))
        return y, cand, base


@dataclass(frozen=True)
class AucChange:
    """One AUC's change: both estimates on the paired items, the change, its standard error and
    its interval (None where undefined: a class without positives or negatives)."""

    baseline: float | None
    candidate: float | None
    delta: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    n_items: int


def placements(positive: npt.NDArray[np.bool_], scores: F) -> tuple[F, F]:
    """Each positive's share of negatives it outscores and each negative's share of positives
    that outscore it, ties counting half (their means are the AUC)."""
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    x, y = scores[positive], scores[~positive]
    below = np.searchsorted(neg, x, side="left") + 0.5 * (
        np.searchsorted(neg, x, side="right") - np.searchsorted(neg, x, side="left")
    )
    above = (pos.size - np.searchsorted(pos, y, side="right")) + 0.5 * (
        np.searchsorted(pos, y, side="right") - np.searchsorted(pos, y, side="left")
    )
    return below / neg.size, above / pos.size


def class_influence(
    positive: npt.NDArray[np.bool_], candidate: F, baseline: F
) -> tuple[float, float, F | None] | None:
    """(baseline AUC, candidate AUC, each item's influence on the change), scaled so that the sum
    of squared influences is DeLong's variance of the change; None without positives or
    negatives, and no influences (no interval) with fewer than ``MIN_PER_SIDE`` of either."""
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 1 or n < 1:
        return None
    c10, c01 = placements(positive, candidate)
    b10, b01 = placements(positive, baseline)
    d10, d01 = c10 - b10, c01 - b01
    if m < MIN_PER_SIDE or n < MIN_PER_SIDE:
        return float(b10.mean()), float(c10.mean()), None
    influence = np.empty(positive.size)
    # DeLong's S10/m + S01/n, with the sample variances' m - 1 and n - 1.
    influence[positive] = (d10 - d10.mean()) / math.sqrt(m * (m - 1))
    influence[~positive] = (d01 - d01.mean()) / math.sqrt(n * (n - 1))
    return float(b10.mean()), float(c10.mean()), influence


class PairedAuc:
    """Accumulator of the paired items; ``finalize`` gives the overall change (the positive
    class's AUC, or the macro one-vs-rest average) and each class's."""

    def __init__(
        self, labels: tuple[str, ...], positive_index: int | None, confidence: float
    ) -> None:
        self.labels = labels
        self.positive_index = positive_index
        self.z = NormalDist().inv_cdf(0.5 + confidence / 2.0)

    def empty(self) -> PairedScoresState:
        return PairedScoresState()

    def update(
        self, state: PairedScoresState, y_true: I64, candidate: F, baseline: F
    ) -> PairedScoresState:
        state.labels.append(np.asarray(y_true, np.int64))
        state.candidate.append(np.asarray(candidate, np.float64))
        state.baseline.append(np.asarray(baseline, np.float64))
        return state

    def merge(self, a: PairedScoresState, b: PairedScoresState) -> PairedScoresState:
        return PairedScoresState(
            a.labels + b.labels, a.candidate + b.candidate, a.baseline + b.baseline
        )

    def finalize(self, state: PairedScoresState) -> dict[str, AucChange]:
        """``roc_auc`` and ``roc_auc[label]``."""
        y, cand, base = state.arrays(len(self.labels))
        per: dict[int, tuple[float, float, F | None]] = {}
        out = {}
        for c, label in enumerate(self.labels):
            found = class_influence(y == c, cand[:, c], base[:, c])
            if found is not None:
                per[c] = found
            out[f"roc_auc[{label}]"] = self._change(found, y.size)
        if self.positive_index is not None:
            out["roc_auc"] = out[f"roc_auc[{self.labels[self.positive_index]}]"]
        elif per:
            b = float(np.mean([v[0] for v in per.values()]))
            c_ = float(np.mean([v[1] for v in per.values()]))
            parts = [v[2] for v in per.values()]
            influence = (
                None if any(p is None for p in parts) else np.mean(parts, axis=0)  # type: ignore[arg-type]
            )
            out["roc_auc"] = self._change((b, c_, influence), y.size)
        else:
            out["roc_auc"] = self._change(None, y.size)
        return out

    def _change(self, found: tuple[float, float, F | None] | None, n: int) -> AucChange:
        if found is None:
            return AucChange(None, None, None, None, None, None, n)
        base, cand, influence = found
        delta = cand - base
        se = None if influence is None else float(np.sqrt(np.sum(influence**2)))
        if se is None or se == 0:
            # No interval: too few of a class, or a variance of 0 (both models separate the
            # classes perfectly on these items), which says nothing of items to come.
            return AucChange(base, cand, delta, None, None, None, n)
        return AucChange(base, cand, delta, se, delta - self.z * se, delta + self.z * se, n)
