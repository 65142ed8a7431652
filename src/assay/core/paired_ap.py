"""Paired PR-AUC change: candidate minus baseline average precision on the same items, with a
paired bootstrap interval.

Average precision has no DeLong: its variance is taken by resampling the items, one set of draws
weighting both models' rankings, so what the two share (the same hard items) stays out of the
interval. As for a single run's AUC (``accumulators/ranking.py``), the resampling is a
multinomial draw over counts rather than over items: each model's scores are cut into at most
``GROUPS`` groups of adjacent scores, and an item falls in the cell (candidate group, baseline
group, positive or not). A replicate's AP is the grouped AP of its cells, shifted by (exact AP -
grouped AP), so that the spread comes from the resamples and the centre from the exact
estimates (scikit-learn's ``average_precision_score``).

The macro average over classes (no positive class) resamples each class's cells on their own,
the approximation the single-run macro AUC states. Below ``MIN_PER_SIDE`` positives or
negatives of a class, or when every replicate gives the same change (both models rank a handful
perfectly), there is no interval: a check on it cannot pass on nothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from assay.core.accumulators.ranking import average_precision_from
from assay.core.comparison import OVERALL, Delta
from assay.core.intervals import IntervalConfig, draw_multinomial, percentile_interval
from assay.core.paired_auc import MIN_PER_SIDE, PairedScoresState

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
GROUPS = 64
REPLICATE_CHUNK = 100


def score_groups(scores: F, groups: int = GROUPS) -> I64:
    """Each score's group, ascending with the score: one per distinct score up to ``groups``
    distinct scores; beyond, adjacent distinct scores share a group, equal scores always do."""
    distinct = np.unique(scores)
    if distinct.size > groups:
        distinct = np.unique(distinct[np.linspace(0, distinct.size - 1, groups).astype(np.int64)])
    found: I64 = np.searchsorted(distinct, scores, side="right") - 1
    return found


def exact_ap(positive: npt.NDArray[np.bool_], scores: F) -> float:
    """Average precision with one group per distinct score (scikit-learn's value)."""
    distinct, index = np.unique(scores, return_inverse=True)
    pos = np.bincount(index, weights=positive, minlength=distinct.size)
    neg = np.bincount(index, weights=~positive, minlength=distinct.size)
    return float(average_precision_from(pos, neg))


def _grouped_ap(draws: F, group: I64, positive: npt.NDArray[np.bool_], n_groups: int) -> F:
    """AP per replicate: ``draws`` [R, cells] counts, each cell in ``group`` and positive or not."""
    pos = np.zeros((draws.shape[0], n_groups))
    neg = np.zeros((draws.shape[0], n_groups))
    order = np.argsort(group, kind="stable")
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    for target, mask in ((pos, positive[order]), (neg, ~positive[order])):
        sums = np.add.reduceat(draws[:, order] * mask, starts, axis=1)
        target[:, g[starts]] = sums
    return average_precision_from(pos, neg)


def class_replicates(
    positive: npt.NDArray[np.bool_], candidate: F, baseline: F, config: IntervalConfig, salt: str
) -> tuple[float, float, F | None] | None:
    """(baseline AP, candidate AP, replicates of the change); None without positives, and no
    replicates with fewer than ``MIN_PER_SIDE`` positives or negatives."""
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 1 or n < 1:
        return None
    base_ap, cand_ap = exact_ap(positive, baseline), exact_ap(positive, candidate)
    if m < MIN_PER_SIDE or n < MIN_PER_SIDE:
        return base_ap, cand_ap, None
    gc, gb = score_groups(candidate), score_groups(baseline)
    kc, kb = int(gc.max()) + 1, int(gb.max()) + 1
    cells, counts = np.unique((gc * kb + gb) * 2 + positive, return_counts=True)
    cell_pos = (cells % 2).astype(bool)
    cell_c, cell_b = (cells // 2) // kb, (cells // 2) % kb
    one = counts[None].astype(np.float64)
    shift_c = cand_ap - float(_grouped_ap(one, cell_c, cell_pos, kc)[0])
    shift_b = base_ap - float(_grouped_ap(one, cell_b, cell_pos, kb)[0])
    draws = draw_multinomial(counts, config, salt).astype(np.float64)
    deltas = []
    for start in range(0, draws.shape[0], REPLICATE_CHUNK):
        chunk = draws[start : start + REPLICATE_CHUNK]
        deltas.append(
            (_grouped_ap(chunk, cell_c, cell_pos, kc) + shift_c)
            - (_grouped_ap(chunk, cell_b, cell_pos, kb) + shift_b)
        )
    return base_ap, cand_ap, np.concatenate(deltas)


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
        k = len(self.labels)
        y = np.concatenate(state.labels) if state.labels else np.empty(0, np.int64)
        cand = np.concatenate(state.candidate) if state.candidate else np.empty((0, k))
        base = np.concatenate(state.baseline) if state.baseline else np.empty((0, k))
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
            reps = None if any(p is None for p in parts) else np.mean(np.stack(parts), axis=0)  # type: ignore[arg-type]
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
        if found is None:
            return Delta(name, OVERALL, None, None, None, None, None, n_items=n)
        base, cand, reps = found
        delta = cand - base
        if reps is None or float(np.ptp(reps)) == 0.0:
            return Delta(name, OVERALL, base, cand, delta, None, None, n_items=n)
        low, high = percentile_interval(reps, self.config.confidence)
        # The interval is the resamples'; like every interval it holds its estimate.
        low, high = min(low, delta), max(high, delta)
        return Delta(name, OVERALL, base, cand, delta, low, high, reps, n)
