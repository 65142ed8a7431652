"""Agreement between experts, and between the model and each expert: Cohen's and Fleiss' kappa.

The mergeable state is a count of **label patterns**: for each item, the tuple (model's label,
expert 1's label, ..., expert m's label) as category codes, -1 where a rater gave none. Every
pairwise confusion table, Fleiss' table and the bootstrap come from these counts, and a bootstrap
resample of patterns is exactly a resample of items, so the model-vs-expert and expert-vs-expert
kappas are resampled jointly and their difference gets an honest interval. Distinct patterns are
few (they are bounded by the number of items, and in practice by how often experts disagree).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.intervals import IntervalConfig, draw_multinomial, percentile_interval

F = npt.NDArray[np.float64]
MODEL = 0  # column 0 of a pattern is the model; columns 1..m the experts


@dataclass
class PatternCounts:
    """How many items show each label pattern; merging adds counts."""

    n_raters: int  # model + experts
    counts: dict[tuple[int, ...], int] = field(default_factory=dict)

    def update(self, codes: npt.NDArray[np.int64]) -> PatternCounts:
        """Add items: ``codes`` is [items, n_raters], -1 where a rater gave no label."""
        if codes.shape[0]:
            patterns, n = np.unique(codes, axis=0, return_counts=True)
            for p, c in zip(map(tuple, patterns.tolist()), n.tolist(), strict=True):
                self.counts[p] = self.counts.get(p, 0) + c
        return self

    def merge(self, other: PatternCounts) -> PatternCounts:
        out = PatternCounts(self.n_raters, dict(self.counts))
        for p, c in other.counts.items():
            out.counts[p] = out.counts.get(p, 0) + c
        return out

    def arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(patterns [P, n_raters], counts [P]) in a canonical order."""
        if not self.counts:
            return np.zeros((0, self.n_raters), np.int64), np.zeros(0, np.int64)
        keys = sorted(self.counts)
        return np.asarray(keys, np.int64), np.asarray([self.counts[k] for k in keys], np.int64)


def cohen_kappa(cm: F) -> F:
    """Cohen's kappa of confusion tables [..., k, k] (nan where chance agreement is total)."""
    n = cm.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = np.trace(cm, axis1=-2, axis2=-1) / n
        expected = (cm.sum(axis=-1) * cm.sum(axis=-2)).sum(axis=-1) / n**2
        out: F = (observed - expected) / (1.0 - expected)
    return np.where(expected >= 1.0 - 1e-12, np.nan, out)


def pair_cells(patterns: npt.NDArray[np.int64], a: int, b: int, k: int) -> npt.NDArray[np.int64]:
    """For each pattern, its cell in the k x k table of raters a and b (-1: one of them is silent)."""
    both = (patterns[:, a] >= 0) & (patterns[:, b] >= 0)
    return np.where(both, patterns[:, a] * k + patterns[:, b], -1)


def _tables(weights: F, cells: npt.NDArray[np.int64], k: int) -> F:
    """Confusion tables [R, k, k] from pattern weights [R, P] and each pattern's cell."""
    onehot = np.zeros((cells.size, k * k))
    valid = cells >= 0
    onehot[np.flatnonzero(valid), cells[valid]] = 1.0
    return (weights @ onehot).reshape(-1, k, k)


def fleiss_kappa(weights: F, patterns: npt.NDArray[np.int64], k: int) -> F:
    """Fleiss' kappa for each row of pattern weights [R, P] (items rated by every expert only)."""
    experts = patterns[:, 1:]
    m = experts.shape[1]
    full: npt.NDArray[np.bool_] = np.asarray((experts >= 0).all(axis=1))
    per = np.zeros((patterns.shape[0], k))
    for j in range(m):
        np.add.at(per, (np.flatnonzero(full), experts[full, j]), 1.0)
    w = weights * full[None, :]
    n_items = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_bar = (w @ (per * (per - 1)).sum(axis=1)) / (n_items * m * (m - 1))
        p_j = (w @ per) / (n_items * m)[:, None]
        p_e = (p_j**2).sum(axis=1)
        out: F = (p_bar - p_e) / (1.0 - p_e)
    return np.where((p_e >= 1.0 - 1e-12) | (n_items == 0), np.nan, out)


def _interval(reps: F, confidence: float) -> list[float | None]:
    low, high = percentile_interval(reps, confidence)
    return [None if not np.isfinite(v) else float(v) for v in (low, high)]


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def agreement_summary(
    state: PatternCounts,
    experts: tuple[str, ...],
    categories: tuple[str, ...],
    intervals: IntervalConfig,
) -> dict[str, Any]:
    """Expert-vs-expert and model-vs-expert kappas with bootstrap intervals, and their difference.

    ``categories`` names the codes (the model's labels first, then labels only experts used).
    """
    patterns, counts = state.arrays()
    k = len(categories)
    m = len(experts)
    reps = draw_multinomial(counts, intervals, "agreement").astype(np.float64)
    weights = np.vstack([counts.astype(np.float64)[None, :], reps])  # row 0: the data itself
    conf = intervals.confidence

    def pair(a: int, b: int) -> tuple[dict[str, Any], F]:
        cells = pair_cells(patterns, a, b, k)
        tables = _tables(weights, cells, k)
        kappas = cohen_kappa(tables)
        n = tables[0].sum()
        agree = np.trace(tables[0]) / n if n else np.nan
        return {
            "n_items": int(n),
            "agreement": _num(agree),
            "kappa": _num(kappas[0]),
            "kappa_ci": _interval(kappas[1:], conf),
        }, kappas

    expert_pairs, expert_kappas = [], []
    for a, b in combinations(range(1, m + 1), 2):
        row, kap = pair(a, b)
        expert_pairs.append({"a": experts[a - 1], "b": experts[b - 1], **row})
        expert_kappas.append(kap)
    model_rows, model_kappas = [], []
    for e in range(1, m + 1):
        row, kap = pair(MODEL, e)
        model_rows.append({"expert": experts[e - 1], **row})
        model_kappas.append(kap)
    fleiss = fleiss_kappa(weights, patterns, k) if m >= 2 else np.full(weights.shape[0], np.nan)
    n_full = int(counts[(patterns[:, 1:] >= 0).all(axis=1)].sum()) if counts.size else 0

    out: dict[str, Any] = {
        "experts": list(experts),
        "expert_pairs": expert_pairs,
        "fleiss_kappa": {
            "value": _num(fleiss[0]),
            "ci": _interval(fleiss[1:], conf),
            "n_items": n_full,
            "note": "items labelled by every expert",
        },
        "model_vs_expert": model_rows,
    }
    if expert_kappas and model_kappas:
        with np.errstate(invalid="ignore"):
            human = np.nanmean(np.stack(expert_kappas), axis=0)
            machine = np.nanmean(np.stack(model_kappas), axis=0)
        diff = machine - human
        low, high = _interval(diff[1:], conf)
        out["comparison"] = {
            "model_mean_kappa": _num(machine[0]),
            "model_mean_kappa_ci": _interval(machine[1:], conf),
            "expert_mean_kappa": _num(human[0]),
            "expert_mean_kappa_ci": _interval(human[1:], conf),
            "difference": _num(diff[0]),
            "difference_ci": [low, high],
            "statement": _statement(low, high, conf),
        }
    return out


def _statement(low: float | None, high: float | None, confidence: float) -> str:
    level = f"{confidence:.0%}"
    if low is None or high is None:
        return "not enough items labelled by several experts to compare the model with them"
    if low > 0:
        return f"the model agrees with the experts more than they agree with each other ({level} interval above 0)"
    if high < 0:
        return f"the model agrees with the experts less than they agree with each other ({level} interval below 0)"
    return (
        f"the model agrees with the experts as well as they agree with each other: no difference "
        f"at {level} (interval {low:+.3f} to {high:+.3f})"
    )
