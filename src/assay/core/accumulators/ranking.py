"""ROC-AUC and PR-AUC (average precision) from mergeable score histograms.

For each class the state counts, per score value, how many items of that class (positives) and of
the other classes (negatives) received it. Two modes:

- ``exact``: results equal scikit-learn's to rounding. The state keeps each class's positive and
  negative scores as they come (a copy per batch, no sort: merging two states joins their lists);
  ``finalize`` sorts each side once and counts with ``searchsorted``, the pass a performance
  engineer would write by hand. The run behind the curves, the operating-point sweep and the
  bootstrap has one bin per distinct score up to ``FULL_RUN_ITEMS`` items; beyond, its bins start at
  about 65,536 actual scores spread evenly in rank, with exact counts (the curves and sweeps are
  thinned to a few thousand points anyway), while ROC-AUC and average precision stay exact.
- ``binned``: a fixed grid of ``n_bins`` equal-width bins on [0, 1]; constant-size state, scores
  within one bin count as ties.

Intervals: the bootstrap resamples the (bin, positive/negative) cells of each class's histogram.
For speed, histograms with many distinct scores are first coarsened into at most
``bootstrap_groups`` groups of adjacent scores (the point estimate is never coarsened). Macro
averages combine per-class replicates drawn independently, which ignores the correlation between
classes (a small approximation, stated in the result's method).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

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
)
from assay.core.metric_value import MetricValue

if TYPE_CHECKING:  # operating_point builds on Run, defined here
    from assay.core.operating_point import OperatingSweeps

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Run:
    """A histogram over sorted distinct score values: how many positives and negatives each."""

    values: F
    pos: I64
    neg: I64

    @property
    def size(self) -> int:
        return int(self.values.size)


def _dedupe(values: F, pos: I64, neg: I64) -> Run:
    """Sum the counts of equal neighbouring values (``values`` sorted)."""
    if values.size == 0:
        return Run(values, pos, neg)
    last = np.flatnonzero(np.concatenate([values[1:] != values[:-1], [True]]))
    if last.size == values.size:
        return Run(values, pos, neg)
    # Differences of cumulative sums: much faster than np.add.reduceat on long arrays.
    cp, cn = np.cumsum(pos)[last], np.cumsum(neg)[last]
    return Run(values[last], np.diff(cp, prepend=0), np.diff(cn, prepend=0))


def _merge_runs(runs: list[Run]) -> Run:
    """One run of several (each sorted and distinct)."""
    runs = [r for r in runs if r.size]
    if not runs:
        return Run(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))
    if len(runs) == 1:
        return runs[0]
    values = np.concatenate([r.values for r in runs])
    order = np.argsort(values, kind="stable")  # a timsort: sorted stretches merge in linear time
    pos = np.concatenate([r.pos for r in runs])[order]
    neg = np.concatenate([r.neg for r in runs])[order]
    return _dedupe(values[order], pos, neg)


@dataclass(frozen=True)
class ScoreHistogramState:
    """Binned mode: per class, one run over the grid. Exact mode: per class, the scores of the
    items that have the class (``raw_pos``) and of those that do not (``raw_neg``), unsorted, in
    the pieces they came in (at most MAX_PIECES: beyond, they are joined into one).

    Binned mode also holds ``pending``: cell codes (class, bin, positive) of recent batches not yet
    counted into the grid. Counting a batch into a fresh copy of the grid costs O(bins) whatever
    the batch's size (2 x 65,536 per class against 8,192 items), so codes are counted once they
    outnumber the grid's cells: O(1) per item, and at most one grid's worth of codes held.
    """

    runs: tuple[tuple[Run, ...], ...] = field(default_factory=tuple)
    pending: tuple[npt.NDArray[np.integer[Any]], ...] = ()
    n_pending: int = 0
    raw_pos: tuple[tuple[F, ...], ...] = ()
    raw_neg: tuple[tuple[F, ...], ...] = ()


MAX_PIECES = 256
EVERY_ITEM = "every item has this expert label: average precision is 1 whatever the scores"
# Up to this many items a class's exact run has one bin per distinct score; beyond, RUN_BINS bins
# that start at actual scores evenly spread in rank (exact counts, coarser curves).
FULL_RUN_ITEMS = 1 << 20
RUN_BINS = 1 << 16


def _joined(pieces: tuple[F, ...], *more: F) -> tuple[F, ...]:
    """``pieces`` and ``more``; joined into one array when they grow past MAX_PIECES, so that
    a long stream of small batches does not hold thousands of arrays."""
    out = (*pieces, *more)
    return (np.concatenate(out),) if len(out) > MAX_PIECES else out


def _sorted(pieces: tuple[F, ...]) -> F:
    if not pieces:
        return np.empty(0)
    return np.sort(np.concatenate(pieces) if len(pieces) > 1 else pieces[0])


@dataclass(frozen=True)
class Ranked:
    """One class's finished ranking: its run, ROC-AUC and average precision."""

    run: Run
    roc_auc: float
    average_precision: float
    # Exact mode, the good class of a multiclass model: the run of 1 - P(good), defective items
    # positive, built from the scores themselves (flipping a coarse run's bins would shift
    # every threshold to the top of its bin).
    flipped: Run | None = None


def _distinct_counts(values: F) -> tuple[F, I64]:
    """Distinct values of a sorted array and how often each occurs."""
    if values.size == 0:
        return values, np.empty(0, np.int64)
    first = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    return values[first], np.diff(first, append=values.size)


def _ranked_exactly(pos: F, neg: F) -> Ranked:
    """ROC-AUC (ties count half) and average precision (scikit-learn's step-wise definition)
    from the sorted scores of the positives and of the negatives."""
    n_pos, n_neg = pos.size, neg.size
    below = np.searchsorted(neg, pos, "left")
    ties = np.searchsorted(neg, pos, "right") - below
    auc = float((below.sum() + 0.5 * ties.sum()) / (n_pos * n_neg)) if n_pos and n_neg else np.nan
    # One step per distinct positive score u, from the top: recall rises by count(u) / P, at
    # precision TP(u) / (TP(u) + FP(u)), TP and FP counting the items scoring at least u.
    values, counts = _distinct_counts(pos)
    tp = n_pos - np.searchsorted(pos, values, "left")
    fp = n_neg - np.searchsorted(neg, values, "left")
    ap = float((counts / n_pos * tp / (tp + fp)).sum()) if n_pos else np.nan
    return Ranked(_run_of(pos, neg), auc, ap)


def _run_of(pos: F, neg: F) -> Run:
    """The run behind curves, sweeps and the bootstrap: every distinct score up to
    FULL_RUN_ITEMS items, else RUN_BINS bins starting at scores taken evenly in rank."""
    if pos.size + neg.size <= FULL_RUN_ITEMS:
        pv, pc = _distinct_counts(pos)
        nv, nc = _distinct_counts(neg)
        return _merge_runs([Run(pv, pc, np.zeros_like(pc)), Run(nv, np.zeros_like(nc), nc)])
    step = max(1, (pos.size + neg.size) // RUN_BINS)
    starts = np.unique(np.concatenate([pos[::step], neg[::step], pos[:1], neg[:1]]))
    # Items in [starts[i], starts[i + 1]): every item falls in one bin, the lowest in the first.
    edges_p = np.searchsorted(pos, starts, "left")
    edges_n = np.searchsorted(neg, starts, "left")
    return Run(
        starts,
        np.diff(edges_p, append=pos.size).astype(np.int64),
        np.diff(edges_n, append=neg.size).astype(np.int64),
    )


def compact_run(runs: tuple[Run, ...]) -> Run:
    """All runs of one class folded into one."""
    return _merge_runs(list(runs))


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
    # Sums in float: 1.0000000000000004 for a class every item has.
    out: F = np.where(total[..., 0] > 0, np.clip(ap, 0.0, 1.0), np.nan)
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


def group_starts(pos: I64 | F, neg: I64 | F | None, groups: int) -> I64:
    """Where at most about ``groups`` groups of adjacent distinct scores start (``pos`` and
    ``neg`` count each score's items, ascending): at equal steps of the positives' cumulative
    count and of the negatives', half the groups each.

    Steps of all items alike left a hundred positives among 100,000 negatives in two or three
    groups, tied with thousands of negatives, and the bootstrap of average precision lost most
    of its spread (an interval 2.8 times too narrow). While at most ``groups / 2`` scores hold
    positives, each starts a group, whose negatives all score between it and the next positive: average
    precision, read at the positives, is then exact in every resample. The negatives' steps do
    the same for rare negatives and ROC-AUC; without ``neg`` (average precision alone) every
    group goes to the positives."""
    sides = [pos] if neg is None else [pos, neg]
    half = max(groups // len(sides), 1)
    found = [np.zeros(1, np.int64)]
    for counts in sides:
        held = np.flatnonzero(np.asarray(counts) > 0)
        if held.size <= half:
            found.append(held)  # each score holding such items starts a group
            continue
        cumulative = np.cumsum(counts)
        steps = np.linspace(0, cumulative[-1], half + 1)[1:-1]
        found.append(np.searchsorted(cumulative, steps, side="left"))
    starts: I64 = np.unique(np.concatenate(found))
    return starts


def _coarsen(run: Run, groups: int) -> tuple[I64, I64]:
    """About ``groups`` groups of adjacent scores (``group_starts``); every score its own group
    when there are no more."""
    if run.size <= groups:
        return run.pos, run.neg
    starts = group_starts(run.pos, run.neg, groups)
    return np.add.reduceat(run.pos, starts), np.add.reduceat(run.neg, starts)


def _interval(replicates: tuple[F, F], confidence: float) -> tuple[float, float]:
    """The hull of the percentile intervals of the plain and the smoothed replicates."""
    plain, smoothed = replicates
    return smoothed_interval(plain, smoothed, confidence)


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
        return ScoreHistogramState(
            tuple(() for _ in range(k)), raw_pos=((),) * k, raw_neg=((),) * k
        )

    def update(self, state: ScoreHistogramState, batch: ScoredBatch) -> ScoreHistogramState:
        if batch.n_items == 0:
            return state
        if self.mode == "binned":
            return self._binned_update(state, batch)
        if len(state.raw_pos) != len(self.labels):
            raise ValueError("the exact ROC/PR state does not hold one score list per class")
        new_pos, new_neg = [], []
        for c in range(len(self.labels)):
            is_pos = batch.y_true == c
            column = batch.scores[:, c]
            new_pos.append(_joined(state.raw_pos[c], column[is_pos]))  # fancy indexing: copies
            new_neg.append(_joined(state.raw_neg[c], column[~is_pos]))
        return ScoreHistogramState(state.runs, raw_pos=tuple(new_pos), raw_neg=tuple(new_neg))

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
        return ScoreHistogramState(
            a.runs,
            raw_pos=tuple(_joined(x, *y) for x, y in zip(a.raw_pos, b.raw_pos, strict=True)),
            raw_neg=tuple(_joined(x, *y) for x, y in zip(a.raw_neg, b.raw_neg, strict=True)),
        )

    def _ranked(self, state: ScoreHistogramState) -> list[Ranked]:
        """Per class: the run, and ROC-AUC and average precision (exact in exact mode)."""
        if self.mode == "binned":
            return [
                Ranked(
                    r,
                    float(roc_auc_from(r.pos, r.neg)),
                    float(average_precision_from(r.pos, r.neg)),
                )
                for r in self.compact(state)
            ]
        if len(state.raw_pos) != len(self.labels) or len(state.raw_neg) != len(self.labels):
            # A state of another shape (another Assay's checkpoint): never a silent wrong AUC.
            raise ValueError("the exact ROC/PR state does not hold one score list per class")
        out = []
        for c, (p, n) in enumerate(zip(state.raw_pos, state.raw_neg, strict=True)):
            pos, neg = _sorted(p), _sorted(n)
            ranked = _ranked_exactly(pos, neg)
            if c == self.negative_index and not self._binary_sweep:
                # 1 - x reverses the order: reversed, the defect scores ascend again.
                ranked = replace(ranked, flipped=_run_of((1.0 - neg)[::-1], (1.0 - pos)[::-1]))
            out.append(ranked)
        return out

    @property
    def _binary_sweep(self) -> bool:
        return len(self.labels) == 2 and self.positive_index is not None

    def compact(self, state: ScoreHistogramState) -> tuple[Run, ...]:
        """One run per class; equal for any split of the same items into shards."""
        if self.mode == "binned":
            return tuple(compact_run(r) for r in self._flush(state).runs)
        return tuple(r.run for r in self._ranked(state))

    def _replicates(self, ranked: Ranked, salt: str) -> tuple[F, F, F, F]:
        """Bootstrap replicates of ROC-AUC and AP, centred on the estimate of the full histogram:
        of the histogram as it is, and of the histogram with half a positive scored below every
        item and half a negative above (the finalize takes the hull of both intervals).

        The draws resample the coarsened histogram, whose own AUC and AP differ from the full
        one's (ties merged: for AP on a 1M-item run by more than the interval's width). Each
        replicate is therefore shifted by (full estimate - coarsened estimate): the spread comes
        from the resamples, the centre from the same computation as the point estimate.

        Why the half items: every resample of a perfectly ranked handful ranks perfectly, and
        an interval [1, 1] from two defects and two good items passed ``roc_auc >= 0.9``. With
        them, every resample holds half of the worst ranking error there can be (as Agresti and
        Coull's added failures do for a proportion); it costs about half an item's share of the
        rarer class, so little with hundreds of each class.
        """
        pos, neg = _coarsen(ranked.run, self.bootstrap_groups)
        n = self.intervals.n_resamples
        if pos.size == 0:
            nan = np.full(n, np.nan)
            return nan, nan, nan, nan
        auc_shift = ranked.roc_auc - roc_auc_from(pos, neg)
        ap_shift = ranked.average_precision - average_precision_from(pos, neg)

        drawn = draw_multinomial(np.stack([pos, neg]), self.intervals, salt)
        draws: F = drawn.reshape(-1, 2, pos.size).astype(np.float64)

        def measured(p: F, q: F) -> tuple[F, F]:
            return (
                np.clip(roc_auc_from(p, q) + auc_shift, 0.0, 1.0),
                np.clip(average_precision_from(p, q) + ap_shift, 0.0, 1.0),
            )

        auc, ap = measured(draws[:, 0], draws[:, 1])
        # The same resamples, each with half a positive below every item and half a negative
        # above, added as fixed weights (drawn inside the multinomial they came as whole items,
        # Poisson-many: two or more in one resample in 9% of them, and with 50 defects the lower
        # bound fell 2/50 below the estimate on any number of items).
        r = draws.shape[0]
        half, zero = np.full((r, 1), PSEUDO_ITEM), np.zeros((r, 1))
        auc_s, ap_s = measured(
            np.concatenate([half, draws[:, 0], zero], axis=1),
            np.concatenate([zero, draws[:, 1], half], axis=1),
        )
        return auc, ap, auc_s, ap_s

    def _operating_sweep(
        self, runs: tuple[Run, ...], flipped: Run | None = None
    ) -> OperatingSweeps:
        """The decision the line takes: the positive class (binary) or any defect vs good
        (``flipped``: the defect-score run, when built from the scores)."""
        from assay.core.operating_point import OperatingSweeps, Sweep, defect_run

        if self._binary_sweep and self.positive_index is not None:
            return OperatingSweeps(
                self.labels[self.positive_index], Sweep.of(runs[self.positive_index])
            )
        # Multiclass: each class against the rest ("flag as <class> when its score >= t"), lighter
        # sweeps since there are k of them; plus the defect-vs-good decision when there is a good class.
        rest = {
            label: Sweep.of(run, max_points=500)
            for label, run in zip(self.labels, runs, strict=True)
        }
        if self.negative_index is None:
            return OperatingSweeps(one_vs_rest=rest)
        good = self.labels[self.negative_index]
        defects = flipped if flipped is not None else defect_run(runs[self.negative_index])
        return OperatingSweeps(f"defect (not {good})", Sweep.of(defects), rest)

    def _ap_value(self, ap: float, reps: tuple[F, F], every_item: bool) -> MetricValue:
        """A class's average precision; when every item has the class it is 1 whatever the
        scores (a random model's too), so it has no interval and says why."""
        if every_item:
            return MetricValue.of(ap, note=EVERY_ITEM)
        return MetricValue.of(
            ap,
            _interval(reps, self.intervals.confidence),
            "bootstrap",
            note=None if np.isfinite(ap) else "no item has this expert label",
        )

    def finalize(self, state: ScoreHistogramState) -> Finalized:
        conf = self.intervals.confidence
        out = Finalized()
        ranked = self._ranked(state)
        runs = tuple(r.run for r in ranked)
        aucs: list[float] = []
        aps: list[float] = []
        auc_reps: list[tuple[F, F]] = []
        ap_reps: list[tuple[F, F]] = []
        curves: dict[str, dict[str, dict[str, list[float]]]] = {}
        every: set[int] = set()  # classes every item has: AP is 1 whatever the scores
        for k, (label, r) in enumerate(zip(self.labels, ranked, strict=True)):
            run, auc, ap = r.run, r.roc_auc, r.average_precision
            auc_rep, ap_rep, auc_smooth, ap_smooth = self._replicates(r, f"{self.name}:{k}")
            aucs.append(auc)
            aps.append(ap)
            auc_reps.append((auc_rep, auc_smooth))
            ap_reps.append((ap_rep, ap_smooth))
            no_pos = "no item has this expert label"
            if np.isfinite(ap) and not run.neg.any():
                every.add(k)
            out.per_class[label] = {
                "roc_auc": MetricValue.of(
                    auc,
                    _interval(auc_reps[-1], conf),
                    "bootstrap",
                    note=None if np.isfinite(auc) else no_pos + " (or every item has it)",
                ),
                "pr_auc": self._ap_value(ap, ap_reps[-1], k in every),
            }
            curves[label] = {"roc": roc_curve_from(run), "pr": pr_curve_from(run)}
        if len(self.labels) == 2 and np.isfinite(aucs[0]) and abs(aucs[0] - aucs[1]) < 1e-12:
            # Two classes ranked by complementary scores have one ROC-AUC: one interval too, the
            # positive class's (the headline's), where two resamples gave two (a newcomer).
            shown = self.positive_index if self.positive_index is not None else 1
            for label in self.labels:
                out.per_class[label]["roc_auc"] = out.per_class[self.labels[shown]]["roc_auc"]
        out.extras["curves"] = curves
        flipped = next((r.flipped for r in ranked if r.flipped is not None), None)
        out.extras["operating_sweep"] = self._operating_sweep(runs, flipped)
        out.extras["auc_mode"] = (
            "exact" if self.mode == "exact" else f"binned ({self.n_bins:,} equal-width bins)"
        )
        if self.positive_index is not None:
            pos = self.positive_index
            out.metrics["roc_auc"] = MetricValue.of(
                aucs[pos], _interval(auc_reps[pos], conf), "bootstrap"
            )
            out.metrics["pr_auc"] = self._ap_value(aps[pos], ap_reps[pos], pos in every)
        else:
            for name, values, reps in (("roc_auc", aucs, auc_reps), ("pr_auc", aps, ap_reps)):
                defined = [i for i, v in enumerate(values) if np.isfinite(v)]
                if not defined:
                    out.metrics[name] = MetricValue.of(
                        None, note="no class has both positives and negatives"
                    )
                    continue
                if name == "pr_auc" and set(defined) <= every:
                    # One class in the data: its AP is 1 and the others' undefined.
                    out.metrics[name] = MetricValue.of(float(values[defined[0]]), note=EVERY_ITEM)
                    continue
                macro = float(np.mean([values[i] for i in defined]))
                rep = (
                    _mean_of_finite(np.stack([reps[i][0] for i in defined])),
                    _mean_of_finite(np.stack([reps[i][1] for i in defined])),
                )
                out.metrics[name] = MetricValue.of(
                    macro,
                    _interval(rep, conf),
                    "bootstrap",
                    note="macro average, one-vs-rest over classes present in the data",
                )
        return out
