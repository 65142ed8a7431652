"""Export equivalence: how far a candidate's scores and decisions are from the baseline's, item by
item. Does the INT8 OpenVINO file on the edge box behave like the ONNX model that was validated?

On every item both models judged: |Δscore| per class (the candidate's score minus the baseline's),
and whether the decision flipped (the two predicted classes differ, whichever is right). The state
is mergeable and bounded: per class the largest |Δ| and a histogram of |Δ| on log-spaced bins
(50 a decade from 1e-12 to 10), the count of flips by (baseline's class, candidate's class), and
the ``k`` flips with the largest |Δ| (ties broken by item id, so sharding cannot change them).

The p99 is read from the histogram as the upper edge of the bin holding the 99th percentile (never
above the maximum): an upper bound, at most 4.7% above the exact value (one bin's width), so that a
check ``p99_abs_score_diff <= x`` never passes on an understated number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.comparison import PairedBatch
from assay.core.intervals import wilson_interval
from assay.core.metric_value import MetricValue

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

PER_DECADE = 50
EDGES = np.concatenate([[0.0], np.logspace(-12, 1, 13 * PER_DECADE + 1)])
N_BINS = EDGES.size + 1  # the last bin holds everything above 10 (upper edge: inf)
Example = tuple[float, str, str | None, int, int, int]  # |Δ|, id, ref, expert, baseline, cand


@dataclass
class EquivalenceState:
    n: int
    max_abs: F  # [K + 1]: per class, then per item over classes
    hist: I64  # [K + 1, N_BINS]
    flips: I64  # [K, K]: baseline's class x candidate's class
    examples: tuple[Example, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class EquivalenceAccumulator:
    """|Δscore| and decision flips between the baseline (``base_*``) and the candidate."""

    labels: tuple[str, ...]
    k: int = 24

    def empty(self) -> EquivalenceState:
        n = len(self.labels)
        return EquivalenceState(
            0, np.zeros(n + 1), np.zeros((n + 1, N_BINS), np.int64), np.zeros((n, n), np.int64)
        )

    def update(self, state: EquivalenceState, batch: PairedBatch) -> EquivalenceState:
        if batch.n_items == 0:
            return state
        k = len(self.labels)
        diff = np.abs(batch.cand_scores - batch.base_scores)
        per = np.concatenate([diff, diff.max(axis=1, keepdims=True)], axis=1)  # [n, K + 1]
        per = np.where(np.isfinite(per), per, np.inf)
        bins = np.searchsorted(EDGES, per, side="left")  # bin i: (EDGES[i-1], EDGES[i]]
        hist = state.hist.copy()
        for c in range(k + 1):
            hist[c] += np.bincount(bins[:, c], minlength=N_BINS)
        flipped = np.flatnonzero(batch.base_pred != batch.cand_pred)
        flips = state.flips + np.bincount(
            batch.base_pred[flipped] * k + batch.cand_pred[flipped], minlength=k * k
        ).reshape(k, k)
        new = [
            (
                float(per[i, k]),
                str(batch.item_ids[i]),
                batch.refs[i] if batch.refs else None,
                int(batch.y_true[i]),
                int(batch.base_pred[i]),
                int(batch.cand_pred[i]),
            )
            for i in flipped.tolist()
        ]
        return EquivalenceState(
            state.n + batch.n_items,
            np.maximum(state.max_abs, per.max(axis=0)),
            hist,
            flips,
            _top([*state.examples, *new], self.k),
        )

    def merge(self, a: EquivalenceState, b: EquivalenceState) -> EquivalenceState:
        return EquivalenceState(
            a.n + b.n,
            np.maximum(a.max_abs, b.max_abs),
            a.hist + b.hist,
            a.flips + b.flips,
            _top([*a.examples, *b.examples], self.k),
        )

    def finalize(self, state: EquivalenceState, confidence: float) -> dict[str, Any]:
        """``score_differences`` of result.json: per class and per item, max and p99 of |Δ|;
        the flips with their rate's interval and the flipped items with the largest |Δ|."""
        k = len(self.labels)
        n_flips = int(state.flips.sum())
        low, high = wilson_interval(n_flips, state.n, confidence) if state.n else (None, None)

        def stats(c: int) -> dict[str, float | None]:
            if state.n == 0:
                return {"max": None, "p99": None}
            top = float(state.max_abs[c])
            return {"max": _finite(top), "p99": _finite(_p99(state.hist[c], state.n, top))}

        return {
            "n_items": state.n,
            "any_class": stats(k),
            "by_class": {label: stats(c) for c, label in enumerate(self.labels)},
            "n_decision_flips": n_flips,
            "flip_rate": {
                "value": n_flips / state.n if state.n else None,
                "ci_low": low,
                "ci_high": high,
            },
            "flips": {
                self.labels[b]: {self.labels[c]: int(state.flips[b, c]) for c in range(k) if b != c}
                for b in range(k)
            },
            "flipped_examples": [
                {
                    "label": self.labels[base],
                    "predicted": self.labels[cand],
                    "expert": self.labels[expert] if expert >= 0 else None,
                    "confidence": delta,
                    "item_id": item_id,
                    "ref": ref,
                }
                for delta, item_id, ref, expert, base, cand in state.examples
            ],
        }


def equivalence_metrics(found: dict[str, Any] | None) -> dict[str, MetricValue]:
    """The numbers a policy checks (``max_abs_score_diff[class]``...), from ``finalize``'s."""
    if not found:
        return {}
    if not found["n_items"]:  # no item both judged: nothing is known, not "no flip"
        names = ["max_abs_score_diff", "p99_abs_score_diff", "decision_flips", "flip_rate"]
        names += [f"{m}[{c}]" for c in found["by_class"] for m in names[:2]]
        return {n: MetricValue.of(None, note="no item judged by both models") for n in names}
    note = found.get("note")
    out: dict[str, MetricValue] = {
        "max_abs_score_diff": MetricValue.of(found["any_class"]["max"], note=note),
        "p99_abs_score_diff": MetricValue.of(found["any_class"]["p99"], note=note),
        "decision_flips": MetricValue.of(float(found["n_decision_flips"])),
    }
    rate = found["flip_rate"]
    interval = None if rate["ci_low"] is None else (rate["ci_low"], rate["ci_high"])
    out["flip_rate"] = MetricValue.of(rate["value"], interval, "wilson")
    for label, s in found["by_class"].items():
        out[f"max_abs_score_diff[{label}]"] = MetricValue.of(s["max"], note=note)
        out[f"p99_abs_score_diff[{label}]"] = MetricValue.of(s["p99"], note=note)
    return out


def _p99(hist: I64, n: int, top: float) -> float:
    # The order statistic numpy's quantile takes with method "higher" (0-based ceil((n-1) q)),
    # at or above its default, linear, interpolation.
    rank = math.ceil((n - 1) * 0.99) + 1
    b = int(np.searchsorted(np.cumsum(hist), rank, side="left"))
    edge = EDGES[b] if b < EDGES.size else math.inf
    return float(min(edge, top))


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _top(examples: list[Example], k: int) -> tuple[Example, ...]:
    return tuple(sorted(examples, key=lambda e: (-e[0], e[1]))[:k])
