"""Operating point: what each decision threshold would cost, from the merged score histograms.

For a binary model the sweep is over the positive class's score. For a multiclass model with a
good class (``negative`` in the spec) it is over the defect score ``1 - P(good)``: "flag the item
as defective when its defect score >= t", the decision a line actually takes. Thresholds are the
distinct scores, thinned evenly in item count to at most ``max_points`` when there are more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.accumulators.ranking import Run

F = npt.NDArray[np.float64]


def defect_run(good: Run) -> Run:
    """The histogram of 1 - P(good), with defective items as the positives: exact for a run with
    one bin per score; a coarser run's bins flip onto their tops (binned mode, where thresholds are
    bin centres anyway; exact mode builds this run from the scores instead)."""
    return Run(1.0 - good.values[::-1], good.neg[::-1].copy(), good.pos[::-1].copy())


@dataclass(frozen=True)
class Sweep:
    """Counts at each threshold t (an item flagged when its score >= t), highest threshold
    first: one array per count, all of one length."""

    threshold: F
    tp: F
    fp: F
    fn: F
    tn: F

    @classmethod
    def of(cls, run: Run, max_points: int = 2000) -> Sweep:
        """The sweep of a score histogram: thresholds are its distinct scores, thinned evenly
        in item count to at most ``max_points`` (both ends kept) when there are more."""
        if run.size == 0:
            empty = np.zeros(0)
            return cls(empty, empty, empty, empty, empty)
        values = run.values[::-1]
        tp = np.cumsum(run.pos[::-1]).astype(np.float64)
        fp = np.cumsum(run.neg[::-1]).astype(np.float64)
        n_pos, n_neg = tp[-1], fp[-1]
        keep = np.arange(values.size)
        if values.size > max_points:
            counts = tp + fp
            targets = np.linspace(counts[0], counts[-1], max_points)
            keep = np.unique(np.r_[0, values.size - 1, np.searchsorted(counts, targets)])
            keep = keep[keep < values.size]
        tp, fp = tp[keep], fp[keep]
        return cls(values[keep].astype(np.float64), tp, fp, n_pos - tp, n_neg - fp)

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> Sweep:
        """A sweep as result.json holds it (lists under threshold, tp, fp, fn, tn)."""
        return cls(*(np.asarray(data[k], np.float64) for k in _COUNTS))

    def to_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in _COUNTS}

    def __len__(self) -> int:
        return int(self.threshold.size)

    def point(self, i: int) -> dict[str, Any]:
        return point_from_counts(
            self.tp[i], self.fp[i], self.fn[i], self.tn[i], float(self.threshold[i])
        )

    def rates(self) -> dict[str, F]:
        """Recall, precision and false-alarm rate at every threshold (NaN where undefined)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "recall": self.tp / (self.tp + self.fn),
                "precision": self.tp / (self.tp + self.fp),
                "false_alarm_rate": self.fp / (self.fp + self.tn),
            }

    def thinned(self, max_points: int = 300) -> Sweep:
        """A lighter copy for charts: ``max_points`` thresholds evenly spaced in index."""
        if len(self) <= max_points:
            return self
        keep = np.unique(np.linspace(0, len(self) - 1, max_points).astype(int))
        return Sweep(*(getattr(self, k)[keep] for k in _COUNTS))


_COUNTS = ("threshold", "tp", "fp", "fn", "tn")


@dataclass(frozen=True)
class OperatingSweeps:
    """The decisions a line could take, swept: the headline one (the positive class of a binary
    model, or any defect against the good class) and, for a multiclass model, each class
    against the rest."""

    positive: str | None = None
    sweep: Sweep | None = None
    one_vs_rest: Mapping[str, Sweep] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OperatingSweeps:
        rest = data.get("one_vs_rest")
        return cls(
            data.get("positive"),
            None if data.get("sweep") is None else Sweep.from_dict(data["sweep"]),
            None if rest is None else {k: Sweep.from_dict(v) for k, v in rest.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.one_vs_rest is not None:
            out["one_vs_rest"] = {k: v.to_dict() for k, v in self.one_vs_rest.items()}
        if self.sweep is not None:
            out["positive"] = self.positive
            out["sweep"] = self.sweep.to_dict()
        return out


@dataclass(frozen=True)
class Costs:
    false_alarm: float = 1.0
    missed_defect: float = 1.0


def point_from_counts(
    tp: float, fp: float, fn: float, tn: float, threshold: float | None
) -> dict[str, Any]:
    """One decision's counts and rates: precision, recall, false-alarm rate, alarms and misses
    per 1,000 items (None where a rate has no items to count)."""
    n = tp + fp + fn + tn
    return {
        "threshold": threshold,
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "tn": int(tn),
        "precision": float(tp / (tp + fp)) if tp + fp else None,
        "recall": float(tp / (tp + fn)) if tp + fn else None,
        "false_alarm_rate": float(fp / (fp + tn)) if fp + tn else None,
        "false_alarms_per_1000": float(1000.0 * fp / n) if n else None,
        "missed_per_1000": float(1000.0 * fn / n) if n else None,
    }


def cost_optimal(s: Sweep, costs: Costs) -> dict[str, Any] | None:
    """The threshold with the lowest expected cost per item (ties: the highest threshold)."""
    if not len(s):
        return None
    cost = costs.false_alarm * s.fp + costs.missed_defect * s.fn
    i = int(np.argmin(cost))
    n = s.tp[i] + s.fp[i] + s.fn[i] + s.tn[i]
    return s.point(i) | {"cost_per_item": float(cost[i] / n) if n else None}


def meeting(s: Sweep, metric: str, bound: float) -> dict[str, Any] | None:
    """The threshold meeting ``recall >= bound`` with fewest false alarms, or
    ``false_alarm_rate <= bound`` with the highest recall; None when no threshold does. Ties go
    to the highest threshold."""
    rates = s.rates()
    if metric == "recall":
        ok = np.flatnonzero(np.nan_to_num(rates["recall"], nan=-1.0) >= bound)
        best = np.lexsort((-s.threshold[ok], s.fp[ok])) if ok.size else ok
    else:
        ok = np.flatnonzero(np.nan_to_num(rates["false_alarm_rate"], nan=2.0) <= bound)
        best = np.lexsort((-s.threshold[ok], -s.tp[ok])) if ok.size else ok
    return s.point(int(ok[best[0]])) if ok.size else None


def analyse_operating_point(
    s: Sweep,
    costs: Costs | None,
    constraint: tuple[str, float] | None,
) -> dict[str, Any]:
    """Cost-optimal and constrained thresholds of a sweep (what a policy asks for)."""
    out: dict[str, Any] = {}
    if costs is not None:
        out["costs"] = {"false_alarm": costs.false_alarm, "missed_defect": costs.missed_defect}
        out["cost_optimal"] = cost_optimal(s, costs)
    if constraint is not None:
        metric, bound = constraint
        out["constraint"] = f"{metric} {'>=' if metric == 'recall' else '<='} {bound:g}"
        out["meeting_constraint"] = meeting(s, metric, bound)
    return out


__all__ = [
    "Costs",
    "OperatingSweeps",
    "Sweep",
    "analyse_operating_point",
    "defect_run",
    "point_from_counts",
]
