"""Paired comparison of a candidate with a baseline on the same items.

The state is the joint table of counts (expert label x baseline prediction x candidate prediction),
overall and per slice. It merges by addition, and every confusion-based metric of either model is a
function of it, so the paired bootstrap runs on it: one multinomial draw of the joint table per
replicate gives both models' confusion matrices for the same resampled items. Mean losses are
compared through a histogram of per-item differences (candidate minus baseline).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.accumulators.confusion import (
    CHANCE_CORRECTED,
    CONFUSION_METRICS,
    RATE_METRICS,
    metric_function,
)
from assay.core.accumulators.losses import BOOTSTRAP_GROUPS, EDGES, coarsen_bins, log_bin_index
from assay.core.intervals import (
    MIN_MEAN_ITEMS,
    IntervalConfig,
    draw_multinomial,
    percentile_interval,
)
from assay.core.slicing import format_predicate
from assay.core.stattests import bootstrap_p_value, mcnemar_exact

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
SliceKey = tuple[tuple[str, str], ...]  # () is the whole dataset
OVERALL: SliceKey = ()


def slice_name(key: SliceKey) -> str:
    """``camera = 3 and line_speed >= 1800``; the overall slice is ``all items``."""
    return " and ".join(format_predicate(c, v) for c, v in key) if key else "all items"


@dataclass(frozen=True)
class PairedBatch:
    """Items judged by both models, aligned, with their slice memberships."""

    y_true: I64
    base_pred: I64
    cand_pred: I64
    base_scores: F
    cand_scores: F
    item_ids: Sequence[str] = ()
    refs: Sequence[str | None] = ()
    # Slice spec -> index of each item's slice under it (-1: none); see JointCountsAccumulator.
    slice_codes: dict[str, npt.NDArray[np.int32]] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return len(self.y_true)


@dataclass
class JointState:
    counts: dict[SliceKey, I64] = field(default_factory=dict)


@dataclass(frozen=True)
class JointCountsAccumulator:
    """Counts of (expert, baseline, candidate) triples, overall and per slice of each slice spec."""

    labels: tuple[str, ...]
    # Slice spec -> the key of each slice code it assigns.
    slice_keys: dict[str, tuple[SliceKey, ...]] = field(default_factory=dict)
    name: str = "joint_counts"

    def empty(self) -> JointState:
        k = len(self.labels)
        return JointState({OVERALL: np.zeros((k, k, k), np.int64)})

    def _table(self, cells: I64) -> I64:
        k = len(self.labels)
        return np.bincount(cells, minlength=k**3).reshape(k, k, k).astype(np.int64)

    def update(self, state: JointState, batch: PairedBatch) -> JointState:
        k = len(self.labels)
        cells = (batch.y_true * k + batch.base_pred) * k + batch.cand_pred
        out = dict(state.counts)
        out[OVERALL] = out[OVERALL] + self._table(cells)
        for spec, keys in self.slice_keys.items():
            codes = batch.slice_codes[spec]
            for code in np.unique(codes[codes >= 0]).tolist():
                key = keys[code]
                table = self._table(cells[codes == code])
                out[key] = out[key] + table if key in out else table
        return JointState(out)

    def merge(self, a: JointState, b: JointState) -> JointState:
        out = dict(a.counts)
        for key, table in b.counts.items():
            out[key] = out[key] + table if key in out else table
        return JointState(out)


@dataclass(frozen=True)
class Delta:
    """candidate - baseline for one metric on one slice, with its paired bootstrap."""

    metric: str
    slice: SliceKey
    baseline: float | None
    candidate: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    replicates: F = field(repr=False, compare=False, default_factory=lambda: np.empty(0))
    n_items: int = 0
    # An analytic standard error (DeLong's, for ROC-AUC) where the interval is normal rather than
    # a bootstrap's percentiles; None: read it from the replicates.
    se: float | None = None

    @property
    def std_error(self) -> float:
        if self.se is not None:
            return self.se
        finite = self.replicates[np.isfinite(self.replicates)]
        return float(finite.std(ddof=1)) if finite.size > 1 else math.inf

    @property
    def has_interval(self) -> bool:
        """Whether the change has an interval and what tests it (replicates or a standard error)."""
        return (
            self.ci_low is not None
            and self.ci_high is not None
            and (self.replicates.size > 0 or self.se is not None)
        )

    def p_value(self, sign: float, bound: float) -> float:
        """One-sided p-value against "``sign`` x change lies above ``bound``" being false: the
        share of replicates at or below the bound (a bootstrap's), or its normal counterpart."""
        if self.se is None:
            return bootstrap_p_value(sign * self.replicates, bound, "greater")
        assert self.delta is not None
        if self.se == 0:
            return 1.0 if sign * self.delta <= bound else 0.0
        return NormalDist().cdf((bound - sign * self.delta) / self.se)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "slice": slice_name(self.slice),
            "n_items": self.n_items,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "delta": self.delta,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            **({"method": "DeLong (normal)"} if self.se is not None else {}),
        }


def _finite(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def ledger(counts: I64, classes: I64 | None = None) -> dict[str, int]:
    """fixed (baseline wrong, candidate right), broken (the reverse), both right, both wrong.

    ``classes`` restricts the count to items whose expert label is one of them.
    """
    t = np.arange(counts.shape[0]) if classes is None else np.asarray(classes)
    total = int(counts[t].sum())
    base_right = int(counts[t, t, :].sum())
    cand_right = int(counts[t, :, t].sum())
    both_right = int(counts[t, t, t].sum())
    return {
        "n_items": total,
        "n_fixed": cand_right - both_right,
        "n_broken": base_right - both_right,
        "n_both_right": both_right,
        "n_both_wrong": total - base_right - cand_right + both_right,
    }


def ledger_by_class(counts: I64, labels: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """The ledger of the items of each expert label."""
    return {label: ledger(counts, np.array([k])) for k, label in enumerate(labels)}


def paired_deltas(
    counts: I64,
    metrics: dict[str, Callable[[I64], F]],
    config: IntervalConfig,
    key: SliceKey,
) -> dict[str, Delta]:
    """Delta and paired-bootstrap interval of each metric, from one set of joint-table resamples.

    The resamples are drawn from the table with half a pseudo-item added to each class's broken
    and fixed answers (Agresti and Min, 2005, add 0.5 to the discordant cells of matched pairs):
    where the two models never disagreed, a plain bootstrap sees no variation at all and its
    interval [0, 0] would pass "no regression" on two items; the pseudo-items let it see what
    a regression on that many items could be, and fade as items accumulate."""
    shape = counts.shape
    smoothed, pseudo = _with_pseudo_discordance(counts)
    draws = draw_multinomial(
        smoothed, config, salt="paired:" + slice_name(key), total=int(counts.sum()) + pseudo
    ).reshape(-1, *shape)
    base_c, cand_c = counts.sum(axis=2), counts.sum(axis=1)
    base_d, cand_d = draws.sum(axis=3), draws.sum(axis=2)
    out = {}
    n = int(counts.sum())
    # With one expert class, kappa and MCC are 0 by construction for both models in every
    # resample: [0, 0] would pass "no regression" for a candidate wrong on every item.
    one_class = int((counts.sum(axis=(1, 2)) > 0).sum()) < 2
    for name, fn in metrics.items():
        with np.errstate(invalid="ignore"):
            base, cand = float(fn(base_c)), float(fn(cand_c))
            reps = np.asarray(fn(cand_d) - fn(base_d), dtype=np.float64)
        if one_class and name in CHANCE_CORRECTED:
            reps = np.empty(0)
        low, high = percentile_interval(reps, config.confidence) if reps.size else (math.nan,) * 2
        delta = cand - base
        out[name] = Delta(
            name,
            key,
            _finite(base),
            _finite(cand),
            _finite(delta),
            _finite(low),
            _finite(high),
            reps,
            n,
        )
    return out


def _with_pseudo_discordance(counts: I64) -> tuple[F, int]:
    """The joint table with, for each expert class present, half an item broken (baseline right,
    candidate wrong) and half fixed, spread over the other classes; and how many items that adds."""
    k = counts.shape[0]
    smoothed = counts.astype(np.float64)
    present = [y for y in range(k) if counts[y].sum() > 0]
    if k < 2:
        return smoothed, 0
    for y in present:
        others = [c for c in range(k) if c != y]
        smoothed[y, y, others] += 0.5 / len(others)
        smoothed[y, others, y] += 0.5 / len(others)
    return smoothed, len(present)


def confusion_metrics(
    labels: tuple[str, ...], negative: int | None
) -> dict[str, Callable[[I64], F]]:
    """Every confusion-based metric a comparison reports: headline ones and per-class P/R/F1."""
    names = list(CONFUSION_METRICS)
    if negative is not None:
        names += RATE_METRICS
    names += [f"{m}[{label}]" for label in labels for m in ("precision", "recall", "f1")]
    out = {}
    for name in names:
        fn = metric_function(name, labels, negative)
        if fn is not None:
            out[name] = fn
    return out


def mcnemar(counts: I64) -> dict[str, float | int]:
    """Exact McNemar test of the accuracy change on the discordant pairs."""
    led = ledger(counts)
    return {
        "n_broken": led["n_broken"],
        "n_fixed": led["n_fixed"],
        "p_value": mcnemar_exact(led["n_broken"], led["n_fixed"]),
    }


@dataclass
class DifferenceState:
    """Signed log-binned histogram of per-item differences, plus exact sums of both losses."""

    counts: I64
    sums: F
    base_sum: float = 0.0
    cand_sum: float = 0.0


@dataclass(frozen=True)
class LossDifferenceAccumulator:
    """Mean per-item loss of both models and the paired bootstrap of their difference."""

    name: str
    loss: Callable[[Any], F]  # ScoredBatch -> per-item loss

    def empty(self) -> DifferenceState:
        size = 2 * EDGES.size
        return DifferenceState(np.zeros(size, np.int64), np.zeros(size))

    def update(self, state: DifferenceState, base: Any, cand: Any) -> DifferenceState:
        lb, lc = self.loss(base), self.loss(cand)
        diff = lc - lb
        mag = log_bin_index(np.abs(diff))
        # Negative differences mirror into the lower half, so bins never mix signs.
        idx = np.where(diff >= 0, EDGES.size + mag, EDGES.size - 1 - mag)
        size = 2 * EDGES.size
        return DifferenceState(
            state.counts + np.bincount(idx, minlength=size),
            state.sums + np.bincount(idx, weights=diff, minlength=size),
            state.base_sum + float(lb.sum()),
            state.cand_sum + float(lc.sum()),
        )

    def merge(self, a: DifferenceState, b: DifferenceState) -> DifferenceState:
        return DifferenceState(
            a.counts + b.counts, a.sums + b.sums, a.base_sum + b.base_sum, a.cand_sum + b.cand_sum
        )

    def delta(
        self, state: DifferenceState, config: IntervalConfig, key: SliceKey = OVERALL
    ) -> Delta:
        n = int(state.counts.sum())
        if n == 0:
            return Delta(self.name, key, None, None, None, None, None)
        if n < MIN_MEAN_ITEMS:
            # A handful of equal differences resamples to one value: [d, d] passed "no
            # regression" on four items. No interval, as for a single run's mean loss.
            base, cand = state.base_sum / n, state.cand_sum / n
            return Delta(self.name, key, base, cand, cand - base, None, None, n_items=n)
        counts, sums = coarsen_bins(state.counts, state.sums, BOOTSTRAP_GROUPS)
        draws = draw_multinomial(counts, config, salt="paired:" + self.name)
        reps = np.asarray(draws @ (sums / counts) / n, dtype=np.float64)
        low, high = percentile_interval(reps, config.confidence)
        return Delta(
            self.name,
            key,
            state.base_sum / n,
            state.cand_sum / n,
            float(state.sums.sum() / n),
            low,
            high,
            reps,
            n,
        )
