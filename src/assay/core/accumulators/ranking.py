"""ROC-AUC and PR-AUC (average precision) from mergeable score histograms.

For each class the state counts, per score value, how many items of that class (positives) and of
the other classes (negatives) received it. Two modes:

- ``exact``: one bin per distinct score. Results equal scikit-learn's to rounding. To keep updates
  cheap on long streams, a state is a short list of sorted runs that are merged like a binary
  counter (O(n log n) in all); ``compact`` folds them into one run.
- ``binned``: a fixed grid of ``n_bins`` equal-width bins on [0, 1]; constant-size state, scores
  within one bin count as ties.

Intervals: the bootstrap resamples the (bin, positive/negative) cells of each class's histogram.
For speed, histograms with many distinct scores are first coarsened into at most
``bootstrap_groups`` groups of adjacent scores (the point estimate is never coarsened). Macro
averages combine per-class replicates drawn independently, which ignores the correlation between
classes (a small approximation, stated in the result's method).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from assay.core.accumulators.base import Finalized
from assay.core.batch import ScoredBatch
from assay.core.intervals import (
    DEFAULT_INTERVALS,
    IntervalConfig,
    draw_multinomial,
    percentile_interval,
)
from assay.core.metric_value import MetricValue

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Run:
    """A histogram over sorted distinct score values; ``level`` counts merges (see ``_push``)."""

    values: F
    pos: I64
    neg: I64
    level: int = 0

    @property
    def size(self) -> int:
        return int(self.values.size)


def _dedupe(values: F, pos: I64, neg: I64, level: int) -> Run:
    """Sum the counts of equal neighbouring values (``values`` sorted)."""
    if values.size == 0:
        return Run(values, pos, neg, level)
    last = np.flatnonzero(np.concatenate([values[1:] != values[:-1], [True]]))
    if last.size == values.size:
        return Run(values, pos, neg, level)
    # Differences of cumulative sums: much faster than np.add.reduceat on long arrays.
    cp, cn = np.cumsum(pos)[last], np.cumsum(neg)[last]
    return Run(values[last], np.diff(cp, prepend=0), np.diff(cn, prepend=0), level)


def _run_from(values: F, pos: I64, neg: I64, level: int = 0) -> Run:
    """Sort and merge equal values (inputs need not be sorted or distinct)."""
    order = np.argsort(values, kind="stable")
    return _dedupe(values[order], pos[order].astype(np.int64), neg[order].astype(np.int64), level)


def _merge_runs(runs: list[Run], level: int) -> Run:
    runs = [r for r in runs if r.size]
    if not runs:
        return Run(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64), level)
    if len(runs) == 1:
        return Run(runs[0].values, runs[0].pos, runs[0].neg, level)
    return _run_from(
        np.concatenate([r.values for r in runs]),
        np.concatenate([r.pos for r in runs]),
        np.concatenate([r.neg for r in runs]),
        level,
    )


@dataclass(frozen=True)
class ScoreHistogramState:
    """Per class, a list of runs (exact mode) or one fixed-grid run (binned mode).

    Binned mode also holds ``pending``: cell codes (class, bin, positive) of recent batches not yet
    counted into the grid. Counting a batch into a fresh copy of the grid costs O(bins) whatever
    the batch's size (2 x 65,536 per class against 8,192 items), so codes are counted once they
    outnumber the grid's cells: O(1) per item, and at most one grid's worth of codes held.
    """

    runs: tuple[tuple[Run, ...], ...] = field(default_factory=tuple)
    pending: tuple[npt.NDArray[np.integer[Any]], ...] = ()
    n_pending: int = 0


FAN_IN = 16


def _push(runs: tuple[Run, ...], new: Run) -> tuple[Run, ...]:
    """Append a run; every ``FAN_IN`` runs of one level merge into one run of the next level.

    Each score is therefore re-sorted only log_16(batches) times (twice for 4,000 batches), and a
    stream of B batches holds at most 15 runs per level.
    """
    stack = [*runs, new]
    while len(stack) >= FAN_IN and len({r.level for r in stack[-FAN_IN:]}) == 1:
        level = stack[-1].level + 1
        merged = _merge_runs(stack[-FAN_IN:], level)
        stack = [*stack[:-FAN_IN], merged]
    return tuple(stack)


def compact_run(runs: tuple[Run, ...]) -> Run:
    """All runs of one class folded into one."""
    return _merge_runs(list(runs), 0)


def roc_auc_from(pos: I64 | F, neg: I64 | F) -> F:
    """ROC-AUC of histograms with ascending scores on the last axis: P(s+ > s-) + P(tie)/2."""
    p = np.asarray(pos, dtype=np.float64)
    n = np.asarray(neg, dtype=np.float64)
    neg_below = np.cumsum(n, axis=-1) - n
    num = (p * (neg_below + 0.5 * n)).sum(axis=-1)
    den = p.sum(axis=-1) * n.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: F = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def average_precision_from(pos: I64 | F, neg: I64 | F) -> F:
    """Average precision (scikit-learn's step-wise PR-AUC) of histograms with ascending scores."""
    p = np.asarray(pos, dtype=np.float64)[..., ::-1]
    n = np.asarray(neg, dtype=np.float64)[..., ::-1]
    tp = np.cumsum(p, axis=-1)
    fp = np.cumsum(n, axis=-1)
    total = tp[..., -1:] if tp.shape[-1] else np.zeros((*tp.shape[:-1], 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1.0), 0.0)
        ap = (p * prec).sum(axis=-1) / total[..., 0]
    out: F = np.where(total[..., 0] > 0, ap, np.nan)
    return out


def roc_curve_from(run: Run, max_points: int = 400) -> dict[str, list[float]]:
    """ROC points (fpr, tpr) from the highest threshold down, thinned to about ``max_points``."""
    p, n = run.pos[::-1].astype(np.float64), run.neg[::-1].astype(np.float64)
    tps, fps = np.concatenate([[0.0], np.cumsum(p)]), np.concatenate([[0.0], np.cumsum(n)])
    if tps[-1] == 0 or fps[-1] == 0:
        return {"fpr": [], "tpr": []}
    keep = np.unique(np.linspace(0, tps.size - 1, min(tps.size, max_points)).astype(int))
    return {"fpr": (fps[keep] / fps[-1]).tolist(), "tpr": (tps[keep] / tps[-1]).tolist()}


def pr_curve_from(run: Run, max_points: int = 400) -> dict[str, list[float]]:
    """Precision-recall points from the highest threshold down, thinned to about ``max_points``."""
    p, n = run.pos[::-1].astype(np.float64), run.neg[::-1].astype(np.float64)
    tps, fps = np.cumsum(p), np.cumsum(n)
    if tps.size == 0 or tps[-1] == 0:
        return {"recall": [], "precision": []}
    keep = np.unique(np.linspace(0, tps.size - 1, min(tps.size, max_points)).astype(int))
    return {
        "recall": (tps[keep] / tps[-1]).tolist(),
        "precision": (tps[keep] / np.maximum(tps[keep] + fps[keep], 1.0)).tolist(),
    }


def _coarsen(run: Run, groups: int) -> tuple[I64, I64]:
    """At most ``groups`` groups of adjacent scores, split at equal steps of cumulative count."""
    if run.size <= groups:
        return run.pos, run.neg
    counts = np.cumsum(run.pos + run.neg)
    edges = np.searchsorted(counts, np.linspace(0, counts[-1], groups + 1)[1:-1], side="left")
    starts = np.unique(np.concatenate([[0], edges]))
    return np.add.reduceat(run.pos, starts), np.add.reduceat(run.neg, starts)


def _mean_of_finite(rows: F) -> F:
    """Column means over the finite entries (nan where a column has none)."""
    finite = np.isfinite(rows)
    count = finite.sum(axis=0)
    total = np.where(finite, rows, 0.0).sum(axis=0)
    out: F = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


@dataclass(frozen=True)
class ScoreHistogramAccumulator:
    """Per-class score histograms giving ROC-AUC and average precision (one-vs-rest)."""

    labels: tuple[str, ...]
    intervals: IntervalConfig = DEFAULT_INTERVALS
    mode: Literal["exact", "binned"] = "exact"
    n_bins: int = 65_536
    positive_index: int | None = None  # binary models: the class whose AUC is the headline
    negative_index: int | None = None  # the good class: the operating-point sweep is on 1 - P(good)
    bootstrap_groups: int = 256
    name: str = "score_histogram"

    def _grid(self) -> F:
        return (np.arange(self.n_bins, dtype=np.float64) + 0.5) / self.n_bins

    def empty(self) -> ScoreHistogramState:
        k = len(self.labels)
        if self.mode == "binned":
            zeros = np.zeros(self.n_bins, np.int64)
            return ScoreHistogramState(tuple((Run(self._grid(), zeros, zeros),) for _ in range(k)))
        return ScoreHistogramState(tuple(() for _ in range(k)))

    def update(self, state: ScoreHistogramState, batch: ScoredBatch) -> ScoreHistogramState:
        if batch.n_items == 0:
            return state
        if self.mode == "binned":
            return self._binned_update(state, batch)
        runs: list[tuple[Run, ...]] = []
        for k, class_runs in enumerate(state.runs):
            is_pos = (batch.y_true == k).astype(np.int64)
            runs.append(_push(class_runs, _run_from(batch.scores[:, k], is_pos, 1 - is_pos)))
        return ScoreHistogramState(tuple(runs))

    def _binned_update(self, state: ScoreHistogramState, batch: ScoredBatch) -> ScoreHistogramState:
        k = len(self.labels)
        dtype = np.int32 if 2 * k * self.n_bins < 2**31 else np.int64
        bins = np.clip((batch.scores * self.n_bins).astype(dtype), 0, self.n_bins - 1)
        is_pos = batch.y_true[:, None] == np.arange(k)
        # One code per (item, class): (class, bin, positive) flattened.
        codes = ((np.arange(k, dtype=dtype) * self.n_bins + bins) * 2 + is_pos).ravel()
        out = ScoreHistogramState(state.runs, (*state.pending, codes), state.n_pending + codes.size)
        return self._flush(out) if out.n_pending >= 2 * k * self.n_bins else out

    def _flush(self, state: ScoreHistogramState) -> ScoreHistogramState:
        """Count the pending codes into the grid (binned mode)."""
        if not state.pending:
            return state
        k = len(self.labels)
        counts = np.bincount(np.concatenate(state.pending), minlength=2 * k * self.n_bins)
        counts = counts.reshape(k, self.n_bins, 2)
        runs = tuple(
            (Run(run.values, run.pos + counts[c, :, 1], run.neg + counts[c, :, 0]),)
            for c, (run,) in enumerate(state.runs)
        )
        return ScoreHistogramState(runs)

    def merge(self, a: ScoreHistogramState, b: ScoreHistogramState) -> ScoreHistogramState:
        if self.mode == "binned":
            a, b = self._flush(a), self._flush(b)
            return ScoreHistogramState(
                tuple(
                    (Run(ra.values, ra.pos + rb.pos, ra.neg + rb.neg),)
                    for (ra,), (rb,) in zip(a.runs, b.runs, strict=True)
                )
            )
        merged = []
        for ra, rb in zip(a.runs, b.runs, strict=True):
            out = ra
            for r in rb:
                out = _push(out, r)
            merged.append(out)
        return ScoreHistogramState(tuple(merged))

    def compact(self, state: ScoreHistogramState) -> tuple[Run, ...]:
        """One run per class; equal for any split of the same items into shards."""
        return tuple(compact_run(r) for r in self._flush(state).runs)

    def _replicates(self, run: Run, salt: str) -> tuple[F, F]:
        """Bootstrap replicates of ROC-AUC and AP, centred on the estimate of the full histogram.

        The draws resample the coarsened histogram, whose own AUC and AP differ from the full
        one's (ties merged: for AP on a 1M-item run by more than the interval's width). Each
        replicate is therefore shifted by (full estimate - coarsened estimate): the spread comes
        from the resamples, the centre from the same computation as the point estimate.
        """
        pos, neg = _coarsen(run, self.bootstrap_groups)
        if pos.size == 0:
            nan = np.full(self.intervals.n_resamples, np.nan)
            return nan, nan
        cells = np.stack([pos, neg])
        draws = draw_multinomial(cells, self.intervals, salt).reshape(-1, 2, pos.size)
        auc_shift = roc_auc_from(run.pos, run.neg) - roc_auc_from(pos, neg)
        ap_shift = average_precision_from(run.pos, run.neg) - average_precision_from(pos, neg)
        return (
            np.clip(roc_auc_from(draws[:, 0], draws[:, 1]) + auc_shift, 0.0, 1.0),
            np.clip(average_precision_from(draws[:, 0], draws[:, 1]) + ap_shift, 0.0, 1.0),
        )

    def _operating_sweep(self, runs: tuple[Run, ...]) -> dict[str, Any] | None:
        """The decision the line takes: the positive class (binary) or any defect vs good."""
        from assay.core.operating_point import defect_run, sweep  # operating_point builds on Run

        if len(self.labels) == 2 and self.positive_index is not None:
            return {
                "positive": self.labels[self.positive_index],
                "sweep": sweep(runs[self.positive_index]),
            }
        # Multiclass: each class against the rest ("flag as <class> when its score >= t"), lighter
        # sweeps since there are k of them; plus the defect-vs-good decision when there is a good class.
        out: dict[str, Any] = {
            "one_vs_rest": {
                label: sweep(run, max_points=500)
                for label, run in zip(self.labels, runs, strict=True)
            }
        }
        if self.negative_index is not None:
            good = self.labels[self.negative_index]
            out["positive"] = f"defect (not {good})"
            out["sweep"] = sweep(defect_run(runs[self.negative_index]))
        return out

    def finalize(self, state: ScoreHistogramState) -> Finalized:
        conf = self.intervals.confidence
        out = Finalized()
        runs = self.compact(state)
        aucs, aps, auc_reps, ap_reps = [], [], [], []
        curves: dict[str, dict[str, dict[str, list[float]]]] = {}
        for k, (label, run) in enumerate(zip(self.labels, runs, strict=True)):
            auc = float(roc_auc_from(run.pos, run.neg))
            ap = float(average_precision_from(run.pos, run.neg))
            auc_rep, ap_rep = self._replicates(run, f"{self.name}:{k}")
            aucs.append(auc)
            aps.append(ap)
            auc_reps.append(auc_rep)
            ap_reps.append(ap_rep)
            no_pos = "no item has this expert label"
            out.per_class[label] = {
                "roc_auc": MetricValue.of(
                    auc,
                    percentile_interval(auc_rep, conf),
                    "bootstrap",
                    note=None if np.isfinite(auc) else no_pos + " (or every item has it)",
                ),
                "pr_auc": MetricValue.of(
                    ap,
                    percentile_interval(ap_rep, conf),
                    "bootstrap",
                    note=None if np.isfinite(ap) else no_pos,
                ),
            }
            curves[label] = {"roc": roc_curve_from(run), "pr": pr_curve_from(run)}
        out.extras["curves"] = curves
        out.extras["operating_sweep"] = self._operating_sweep(runs)
        out.extras["auc_mode"] = (
            "exact" if self.mode == "exact" else f"binned ({self.n_bins:,} equal-width bins)"
        )
        if self.positive_index is not None:
            pos = self.positive_index
            out.metrics["roc_auc"] = MetricValue.of(
                aucs[pos], percentile_interval(auc_reps[pos], conf), "bootstrap"
            )
            out.metrics["pr_auc"] = MetricValue.of(
                aps[pos], percentile_interval(ap_reps[pos], conf), "bootstrap"
            )
        else:
            for name, values, reps in (("roc_auc", aucs, auc_reps), ("pr_auc", aps, ap_reps)):
                defined = [i for i, v in enumerate(values) if np.isfinite(v)]
                if not defined:
                    out.metrics[name] = MetricValue.of(
                        None, note="no class has both positives and negatives"
                    )
                    continue
                macro = float(np.mean([values[i] for i in defined]))
                rep = _mean_of_finite(np.stack([reps[i] for i in defined]))
                out.metrics[name] = MetricValue.of(
                    macro,
                    percentile_interval(rep, conf),
                    "bootstrap",
                    note="macro average, one-vs-rest over classes present in the data",
                )
        return out
