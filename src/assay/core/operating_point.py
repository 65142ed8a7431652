"""Operating point: what each decision threshold would cost, from the merged score histograms.

For a binary model the sweep is over the positive class's score. For a multiclass model with a
good class (``negative`` in the spec) it is over the defect score ``1 - P(good)``: "flag the item
as defective when its defect score >= t", the decision a line actually takes. Thresholds are the
distinct scores, thinned evenly in item count to at most ``max_points`` when there are more.
"""

from __future__ import annotations

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


def sweep(run: Run, max_points: int = 2000) -> dict[str, list[float]]:
    """Counts at each threshold t (positive when score >= t), highest threshold first."""
    if run.size == 0:
        return {"threshold": [], "tp": [], "fp": [], "fn": [], "tn": []}
    values = run.values[::-1]
    tp = np.cumsum(run.pos[::-1]).astype(np.float64)
    fp = np.cumsum(run.neg[::-1]).astype(np.float64)
    n_pos, n_neg = tp[-1], fp[-1]
    keep = np.arange(values.size)
    if values.size > max_points:
        # Thin evenly in cumulative item count, always keeping both ends.
        counts = tp + fp
        targets = np.linspace(counts[0], counts[-1], max_points)
        keep = np.unique(np.concatenate([[0, values.size - 1], np.searchsorted(counts, targets)]))
        keep = keep[keep < values.size]
    return {
        "threshold": values[keep].tolist(),
        "tp": tp[keep].tolist(),
        "fp": fp[keep].tolist(),
        "fn": (n_pos - tp[keep]).tolist(),
        "tn": (n_neg - fp[keep]).tolist(),
    }


@dataclass(frozen=True)
class Costs:
    false_alarm: float = 1.0
    missed_defect: float = 1.0


def point_at(s: dict[str, list[float]], i: int) -> dict[str, Any]:
    """Rates of one sweep point: precision, recall, false-alarm rate, alarms per 1,000 items."""
    tp, fp, fn, tn = (s[k][i] for k in ("tp", "fp", "fn", "tn"))
    n = tp + fp + fn + tn
    return {
        "threshold": s["threshold"][i],
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "tn": int(tn),
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "false_alarm_rate": fp / (fp + tn) if fp + tn else None,
        "false_alarms_per_1000": 1000.0 * fp / n if n else None,
        "missed_per_1000": 1000.0 * fn / n if n else None,
    }


def cost_optimal(s: dict[str, list[float]], costs: Costs) -> dict[str, Any] | None:
    """The threshold with the lowest expected cost per item (ties: the highest threshold)."""
    if not s["threshold"]:
        return None
    cost = costs.false_alarm * np.asarray(s["fp"]) + costs.missed_defect * np.asarray(s["fn"])
    i = int(np.argmin(cost))
    n = s["tp"][i] + s["fp"][i] + s["fn"][i] + s["tn"][i]
    return point_at(s, i) | {"cost_per_item": float(cost[i] / n) if n else None}


def meeting(s: dict[str, list[float]], metric: str, bound: float) -> dict[str, Any] | None:
    """The threshold meeting ``recall >= bound`` with fewest false alarms, or
    ``false_alarm_rate <= bound`` with the highest recall; None when no threshold does."""
    points = [point_at(s, i) for i in range(len(s["threshold"]))]
    if metric == "recall":
        ok = [p for p in points if p["recall"] is not None and p["recall"] >= bound]
        return min(ok, key=lambda p: (p["fp"], -p["threshold"])) if ok else None
    ok = [p for p in points if p["false_alarm_rate"] is not None and p["false_alarm_rate"] <= bound]
    return max(ok, key=lambda p: (p["tp"], p["threshold"])) if ok else None


def analyse_operating_point(
    s: dict[str, list[float]],
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


def thin_for_plot(s: dict[str, list[float]], max_points: int = 300) -> dict[str, list[float]]:
    """A lighter copy of a sweep for charts."""
    n = len(s["threshold"])
    if n <= max_points:
        return s
    keep = np.unique(np.linspace(0, n - 1, max_points).astype(int))
    return {k: [v[i] for i in keep] for k, v in s.items()}


__all__ = ["Costs", "analyse_operating_point", "defect_run", "sweep"]
