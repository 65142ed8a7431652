"""Paired PR-AUC change: candidate minus baseline average precision on the same items, with a
paired bootstrap interval.

Average precision has no DeLong: its variance is taken by resampling the items, one set of draws
weighting both models' rankings, so what the two share (the same hard items) stays out of the
interval. As for a single run's AUC (``accumulators/ranking.py``), the resampling is a
multinomial draw over counts rather than over items: each model's scores are cut into about
``GROUPS`` groups of adjacent scores (every positive starting one while there are few, so rare
defects keep their ranks: ``ranking.group_starts``), and an item falls in the cell (candidate
group, baseline group, positive or not). A replicate's AP is the grouped AP of its cells,
shifted by (exact AP - grouped AP), so that the spread comes from the resamples and the centre
from the exact estimates (scikit-learn's ``average_precision_score``). The resamples may also
draw half a defect the candidate ranks last and the baseline first, and half the reverse
(``PSEUDO_ITEM``).

The macro average over classes (no positive class) resamples each class's cells on their own,
the approximation the single-run macro AUC states. Below ``MIN_PER_SIDE`` positives or
negatives of a class, or when every replicate gives the same change, there is no interval: a
check on it cannot pass on nothing.

``class_replicates`` takes any metric read from histograms of positives and negatives at
ascending scores that the grouping keeps (read at the positives: an anomaly model's F1-max is
another, ``tasks/anomaly/paired.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from assay.core.accumulators.ranking import average_precision_from, group_starts
from assay.core.comparison import OVERALL, Delta
from assay.core.intervals import (
    PSEUDO_ITEM,
    IntervalConfig,
    multinomial_chunks,
    percentile_interval,
)
from assay.core.paired_auc import MIN_PER_SIDE, PairedScoresState

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
GROUPS = 64
REPLICATE_CHUNK = 64
# A metric of [resamples, groups] histograms of positives and negatives at ascending scores.
HistogramMetric = Callable[[F, F], F]


def score_groups(scores: F, positive: npt.NDArray[np.bool_], groups: int = GROUPS) -> I64:
    """Each item's group of adjacent scores, ascending: one per distinct score up to ``groups``;
    beyond, ``group_starts``' groups (every positive starts one while there are few: average
    precision stays exact), equal scores always together."""
    distinct, inverse = np.unique(scores, return_inverse=True)
    if distinct.size <= groups:
        found: I64 = inverse
        return found
    pos = np.bincount(inverse, weights=positive, minlength=distinct.size)
    starts = group_starts(pos, None, groups)  # AP is read at the positives alone
    of_distinct = np.searchsorted(starts, np.arange(distinct.size), side="right") - 1
    grouped: I64 = of_distinct[inverse]
    return grouped


def exact_value(
    positive: npt.NDArray[np.bool_], scores: F, metric: HistogramMetric = average_precision_from
) -> float:
    """``metric`` with one group per distinct score (for AP: scikit-learn's value)."""
    distinct, index = np.unique(scores, return_inverse=True)
    pos = np.bincount(index, weights=positive, minlength=distinct.size).astype(np.float64)
    neg = np.bincount(index, weights=~positive, minlength=distinct.size).astype(np.float64)
    return float(metric(pos[None], neg[None])[0])


class _Cells:
    """The paired items as cells (candidate group, baseline group, positive), with sorting that
    turns a [resamples, cells] draw into each model's metric per resample."""

    def __init__(self, c_group: I64, b_group: I64, positive: npt.NDArray[np.bool_]) -> None:
        self.positive = positive
        self.sides = []
        for group in (c_group, b_group):
            order = np.argsort(group, kind="stable")
            g = group[order]
            starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
            self.sides.append((order, starts, g[starts], int(group.max()) + 1))

    def values(self, draws: F, metric: HistogramMetric) -> tuple[F, F]:
        """(candidate's, baseline's) ``metric`` per row of ``draws``."""
        out = []
        for order, starts, groups, size in self.sides:
            pos = np.zeros((draws.shape[0], size))
            neg = np.zeros((draws.shape[0], size))
            ordered = draws[:, order]
            mask = self.positive[order]
            pos[:, groups] = np.add.reduceat(ordered * mask, starts, axis=1)
            neg[:, groups] = np.add.reduceat(ordered * ~mask, starts, axis=1)
            out.append(metric(pos, neg))
        return out[0], out[1]


def _changes(
    cells: _Cells,
    counts: F,
    shifts: tuple[float, float],
    config: IntervalConfig,
    salt: str,
    n: int,
    metric: HistogramMetric,
) -> F:
    """The change's replicates: resamples of ``n`` items from the cells' ``counts``, each
    model's metric shifted onto its exact estimate."""
    out = []
    for draws in multinomial_chunks(counts, config, salt, total=n, chunk=REPLICATE_CHUNK):
        cand, base = cells.values(draws.astype(np.float64), metric)
        out.append((cand + shifts[0]) - (base + shifts[1]))
    return np.concatenate(out)


def class_replicates(
    positive: npt.NDArray[np.bool_],
    candidate: F,
    baseline: F,
    config: IntervalConfig,
    salt: str,
    metric: HistogramMetric = average_precision_from,
) -> tuple[float, float, F | None] | None:
    """(baseline's ``metric``, candidate's, replicates of the change);
    None without positives or negatives, and no replicates with fewer than ``MIN_PER_SIDE``
    positives or negatives."""
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 1 or n < 1:
        return None
    base_ap = exact_value(positive, baseline, metric)
    cand_ap = exact_value(positive, candidate, metric)
    if m < MIN_PER_SIDE or n < MIN_PER_SIDE:
        return base_ap, cand_ap, None
    # Groups from 1: group 0 and the top one are for the pseudo-items below.
    gc, gb = score_groups(candidate, positive) + 1, score_groups(baseline, positive) + 1
    kc, kb = int(gc.max()) + 2, int(gb.max()) + 2
    codes, counts = np.unique((gc * kb + gb) * 2 + positive, return_counts=True)
    cell_c, cell_b, cell_pos = (codes // 2) // kb, (codes // 2) % kb, (codes % 2).astype(bool)
    grouped = _Cells(cell_c, cell_b, cell_pos).values(counts[None].astype(np.float64), metric)
    shifts = (cand_ap - float(grouped[0][0]), base_ap - float(grouped[1][0]))
    # The resamples may draw half a defect the candidate ranks last and the baseline first,
    # and half the reverse, as the paired confusion bootstrap adds Agresti and Min's half a
    # broken and half a fixed item (``core/comparison.py``): two models that rank twenty items
    # alike in every resample passed "no regression" on [0, x]. Symmetric, it widens both sides.
    smoothed = _Cells(
        np.r_[cell_c, 0, kc - 1], np.r_[cell_b, kb - 1, 0], np.r_[cell_pos, True, True]
    )
    weights = np.r_[counts.astype(np.float64), PSEUDO_ITEM, PSEUDO_ITEM]
    return base_ap, cand_ap, _changes(smoothed, weights, shifts, config, salt, m + n, metric)


class PairedAp:
    """``finalize`` of the paired items' state (the one ``PairedAuc`` fills): ``pr_auc`` (the
    positive class's AP, or the macro average) and ``pr_auc[label]``."""

    def __init__(
        self, labels: tuple[str, ...], positive_index: int | None, config: IntervalConfig
    ) -> None:
        self.labels = labels
        self.positive_index = positive_index
        self.config = config

    def finalize(self, state: PairedScoresState) -> dict[str, Delta]:
        y, cand, base = state.arrays(len(self.labels))
        per: dict[int, tuple[float, float, F | None]] = {}
        out = {}
        for c, label in enumerate(self.labels):
            found = class_replicates(
                y == c, cand[:, c], base[:, c], self.config, f"paired_ap:{label}"
            )
            if found is not None:
                per[c] = found
            out[f"pr_auc[{label}]"] = self._change(f"pr_auc[{label}]", found, y.size)
        if self.positive_index is not None:
            positive = out[f"pr_auc[{self.labels[self.positive_index]}]"]
            out["pr_auc"] = Delta(
                "pr_auc",
                OVERALL,
                positive.baseline,
                positive.candidate,
                positive.delta,
                positive.ci_low,
                positive.ci_high,
                positive.replicates,
                positive.n_items,
            )
        elif per:
            parts = [v[2] for v in per.values()]
            reps = (
                None
                if any(p is None for p in parts)
                else np.mean(np.stack([p for p in parts if p is not None]), axis=0)
            )
            found_macro = (
                float(np.mean([v[0] for v in per.values()])),
                float(np.mean([v[1] for v in per.values()])),
                reps,
            )
            out["pr_auc"] = self._change("pr_auc", found_macro, y.size)
        else:
            out["pr_auc"] = self._change("pr_auc", None, y.size)
        return out

    def _change(self, name: str, found: tuple[float, float, F | None] | None, n: int) -> Delta:
        return replicated_change(name, found, n, self.config.confidence)


def replicated_change(
    name: str, found: tuple[float, float, F | None] | None, n: int, confidence: float
) -> Delta:
    """The change of ``class_replicates``' (baseline, candidate, replicates): no interval without
    replicates or when every replicate gives the same change (a spread of 0 says nothing of
    items to come)."""
    if found is None:
        return Delta(name, OVERALL, None, None, None, None, None, n_items=n)
    base, cand, reps = found
    delta = cand - base
    if reps is None or float(np.ptp(reps)) == 0.0:
        return Delta(name, OVERALL, base, cand, delta, None, None, n_items=n)
    low, high = percentile_interval(reps, confidence)
    # Like every interval, it holds its estimate.
    low, high = min(low, delta), max(high, delta)
    return Delta(name, OVERALL, base, cand, delta, low, high, reps, n)
