"""Confidence intervals computed from merged count states, at a cost independent of the row count.

Rates get Wilson score intervals. Every other headline metric gets a percentile bootstrap: because
such a metric is a function of counts (confusion cells, histogram bins), resampling the items with
replacement is exactly a multinomial draw of ``n`` items over the merged cells, so the bootstrap
runs on the final state instead of on the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
# What smoothed bootstraps add, per class, of the worst kind of item (an error, a defect scored
# below everything): half an item, as Agresti and Min add to the discordant cells of matched
# pairs. Every resample of a perfect handful is perfect; with it, some are not.
PSEUDO_ITEM = 0.5
# Images (per class: images holding it) below which an image bootstrap gives no interval: two
# images a model gets right resample to [1, 1], a confident-looking interval.
MIN_IMAGES = 10
# Judged items below which a mean over items (log loss, Brier score, ECE) gets no bootstrap
# interval: four items of equal loss resample to one value, and the rare large losses that set
# the upper bound are missing from a handful.
MIN_MEAN_ITEMS = 30
FEW_ITEMS = f"fewer than {MIN_MEAN_ITEMS} judged items: no interval"


@dataclass(frozen=True)
class IntervalConfig:
    """How intervals are computed: confidence level, bootstrap resamples and seed."""

    confidence: float = 0.95
    n_resamples: int = 1000
    seed: int = 0


def wilson_interval(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) when n is 0."""
    if n <= 0:
        return (math.nan, math.nan)
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    # At p = 0 or 1 the bound is exactly 0 or 1; rounding would otherwise leave 2.8e-17 and an
    # interval that misses its own estimate.
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return (low, high)


def draw_multinomial(
    counts: npt.NDArray[np.integer] | npt.NDArray[np.floating],
    config: IntervalConfig,
    salt: str = "",
    total: int | None = None,
) -> npt.NDArray[np.int64]:
    """Bootstrap resamples of a count vector: ``n_resamples`` multinomial draws of the same total.

    ``salt`` separates the random streams of different metrics so that each is reproducible on its
    own, whatever else is computed in the run. ``total`` draws that many items from the counts'
    shares instead (counts smoothed with fractional pseudo-counts).
    """
    return np.concatenate(
        list(multinomial_chunks(counts, config, salt, total, config.n_resamples))
    ).reshape(config.n_resamples, -1)


def multinomial_chunks(
    counts: npt.NDArray[np.integer] | npt.NDArray[np.floating],
    config: IntervalConfig,
    salt: str = "",
    total: int | None = None,
    chunk: int = 64,
) -> Iterator[npt.NDArray[np.int64]]:
    """``draw_multinomial``'s resamples, ``chunk`` at a time (the same draws, in order): for
    count vectors too long to hold a thousand resamples of at once."""
    flat = np.asarray(counts, dtype=np.float64).ravel()
    weight = float(flat.sum())
    n = round(weight) if total is None else total
    rng = np.random.default_rng([config.seed, *(ord(c) for c in salt)])
    for start in range(0, config.n_resamples, chunk):
        size = min(chunk, config.n_resamples - start)
        if n == 0 or weight <= 0:
            yield np.zeros((size, flat.size), dtype=np.int64)
        else:
            yield rng.multinomial(n, flat / weight, size=size)


def percentile_interval(replicates: FloatArray, confidence: float) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates, ignoring undefined (nan) replicates."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return (math.nan, math.nan)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def hull(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """The smallest interval holding both (an undefined one gives way to the other)."""
    if math.isnan(a[0]) or math.isnan(a[1]):
        return b
    if math.isnan(b[0]) or math.isnan(b[1]):
        return a
    return (min(a[0], b[0]), max(a[1], b[1]))


def half_samples(n: int, n_halves: int, config: IntervalConfig, salt: str = "") -> FloatArray:
    """``n_halves`` 0/1 weight rows over ``n`` items, in complementary pairs: each pair splits
    the items into two halves drawn without replacement (the pairs make the mean of the halves'
    estimates far less noisy than independent halves would)."""
    rng = np.random.default_rng([config.seed, *(ord(c) for c in f"{salt}:halves")])
    rows = np.zeros((n_halves + n_halves % 2, n))
    for k in range(0, rows.shape[0], 2):
        first = rng.permutation(n) < n // 2
        rows[k, first] = 1.0
        rows[k + 1, ~first] = 1.0
    return rows


# A statistic whose bias falls as n ** -a moves by (2 ** a - 1) of its bias from n items to
# half as many; a = 1/2, the slowest rate the simulations of COCO average precision showed
# (0.5 to 0.65), turns the move into the bias conservatively.
HALF_SAMPLE_RATE = 0.5


def small_sample_shift(estimate: float, replicates: FloatArray, halves: FloatArray) -> float:
    """How far to move a percentile interval down so that it stands where an unbiased
    estimator's would, for a statistic that small samples flatter (average precision: the
    precision envelope takes maxima over noisy points, +0.025 mAP on 60 images in
    ``benchmarks/coco_interval_coverage.py``). Two upward biases add up: the replicates' own
    (their mean above the estimate: the percentile interval sits there) and the estimate's,
    extrapolated from how much higher half samples score (``half_samples``). Only upward biases
    move the interval (0 otherwise): a release gate reads a lower bound as a promise."""
    if not math.isfinite(estimate):
        return 0.0
    reps = replicates[np.isfinite(replicates)]
    half = halves[np.isfinite(halves)]
    own = max(0.0, float(reps.mean()) - estimate) if reps.size else 0.0
    if half.size < max(2, halves.size // 2):  # halves too often without the class to say
        return own
    drift = max(0.0, float(half.mean()) - estimate)
    return float(own + drift / (2.0**HALF_SAMPLE_RATE - 1.0))


def pseudo_shares(n: int, n_pseudo: int, spread_over: int = 1) -> npt.NDArray[np.float64]:
    """Multinomial shares of ``n`` items followed by ``n_pseudo`` pseudo items of
    ``PSEUDO_ITEM`` each, or of ``PSEUDO_ITEM / spread_over``: one half-item budget shared by
    the ``spread_over`` classes a number averages (mean IoU, mAP), where half a missed image per
    class, all drawn at once, moved the average by every class's miss together and left a
    21-class segmenter unable to pass on 1,000 images; a class's own number keeps its own half."""
    shares: npt.NDArray[np.float64] = np.concatenate(
        [np.ones(n), np.full(n_pseudo, PSEUDO_ITEM / max(spread_over, 1))]
    )
    return shares


def smoothed_interval(
    plain: FloatArray, smoothed: FloatArray, confidence: float
) -> tuple[float, float]:
    """The hull of the percentile intervals of plain resamples and of resamples with
    ``PSEUDO_ITEM`` of the worst kind: what the small-sample intervals report."""
    return hull(percentile_interval(plain, confidence), percentile_interval(smoothed, confidence))


def bootstrap_counts(
    counts: npt.NDArray[np.integer],
    statistic: Callable[[npt.NDArray[np.int64]], FloatArray],
    config: IntervalConfig,
    salt: str,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over multinomial resamples of ``counts``.

    ``statistic`` receives an array [n_resamples, *counts.shape] and returns one value per resample.
    """
    shape = np.asarray(counts).shape
    draws = draw_multinomial(counts, config, salt).reshape((config.n_resamples, *shape))
    return percentile_interval(np.asarray(statistic(draws), dtype=np.float64), config.confidence)


DEFAULT_INTERVALS = IntervalConfig()
