"""How far a production sample is from a validation set, column by column, and the validation
metrics re-weighted to the production mix.

Population stability index (PSI) over bins fixed by the validation set: deciles of a numeric
column (its distinct values when it has fewer), or the categories of a categorical one, with a
bin for values the validation set never has. The customary reading: below 0.1 stable, 0.1 to
0.25 a moderate shift, above 0.25 a large one.

Importance weights turn the validation items into a sample of production: with ``p`` a domain
classifier's probability that an item comes from production, ``w = p / (1 - p) * n_val / n_prod``
(clipped, so that no single item decides the estimate). The weighted accuracy is then an estimate
of the accuracy on production items, under the assumption that the columns explain the shift
(covariate shift); the effective sample size ``(sum w)^2 / sum w^2`` says how many validation
items it really rests on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]
EPS = 1e-4  # a bin empty on one side counts as this share, so the log stays finite
PSI_MODERATE, PSI_LARGE = 0.1, 0.25


def psi(expected: F, actual: F) -> float:
    """PSI of two share vectors over the same bins (shares of validation, of production)."""
    e = np.maximum(np.asarray(expected, float), EPS)
    a = np.maximum(np.asarray(actual, float), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_bins(reference: F, n_bins: int = 10) -> F:
    """Inner edges of ``n_bins`` quantile bins of ``reference`` (finite values), or the midpoints
    between its distinct values when it has fewer than ``n_bins`` of them. A reference of one
    value v gets three bins, below v, v itself and above it: with one bin, every other value
    fell into v's and a production of 7s against a validation set of 3s had a PSI of 0."""
    finite = reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.zeros(0)
    distinct = np.unique(finite)
    if distinct.size == 1:
        return np.array([distinct[0], np.nextafter(distinct[0], np.inf)])
    if distinct.size <= n_bins:
        return (distinct[1:] + distinct[:-1]) / 2
    edges = np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.unique(edges)


def numeric_shares(values: F, edges: F) -> F:
    """Shares of ``values`` per bin (len(edges) + 1 bins), then one for missing (NaN) values.
    An infinite value is a value: it lands in the outermost bin on its side, not in missing."""
    present = ~np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[present], "right"), minlength=edges.size + 1)
    counts = np.append(counts, (~present).sum()).astype(float)
    return counts / max(1, values.size)


def category_shares(values: Sequence[object], categories: Sequence[object]) -> F:
    """Shares of ``values`` per category of ``categories``, then one for any other value."""
    index = {c: k for k, c in enumerate(categories)}
    counts = np.zeros(len(categories) + 1)
    for v in values:
        counts[index.get(v, len(categories))] += 1
    return counts / max(1, len(values))


def importance_weights(p_production: F, n_validation: int, n_production: int,
                       clip: float = 20.0) -> F:  # fmt: skip
    """Weights that make validation items a sample of production (see the module's docstring),
    clipped at ``clip`` times their mean."""
    p = np.clip(np.asarray(p_production, float), 1e-6, 1 - 1e-6)
    w = p / (1 - p) * (n_validation / max(1, n_production))
    mean = w.mean() if w.size else 1.0
    clipped: F = np.minimum(w, clip * mean)
    return clipped


def effective_size(weights: F) -> float:
    """Kish's effective sample size of weighted items."""
    total = float(weights.sum())
    squares = float((weights**2).sum())
    return total * total / squares if squares > 0 else 0.0


@dataclass(frozen=True)
class Weighted:
    """A weighted rate with a bootstrap interval over the items (weights held fixed)."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n_items: int
    effective_n: float


def weighted_rate(hits: npt.NDArray[np.bool_], weights: F, confidence: float = 0.95,
                  n_resamples: int = 1000, seed: int = 0) -> Weighted:  # fmt: skip
    """sum(w * hit) / sum(w), with a percentile bootstrap interval over the items."""
    n = hits.size
    if n == 0 or weights.sum() <= 0:
        return Weighted(None, None, None, n, 0.0)
    value = float(np.sum(weights * hits) / np.sum(weights))
    rng = np.random.default_rng(seed)
    draws = np.empty(n_resamples)
    for b in range(n_resamples):
        at = rng.integers(0, n, n)
        w = weights[at]
        draws[b] = np.sum(w * hits[at]) / w.sum() if w.sum() > 0 else np.nan
    alpha = (1 - confidence) / 2
    low, high = np.nanquantile(draws, [alpha, 1 - alpha])
    return Weighted(value, float(low), float(high), n, effective_size(weights))
