"""Paired ECE change: candidate minus baseline expected calibration error on the same items,
with a paired bootstrap interval.

A single run's ECE is resampled over (confidence bin, right or wrong) cells
(``accumulators/calibration.py``). Paired, an item falls in the cell (candidate's bin, candidate
right, baseline's bin, baseline right): at most 15 x 2 x 15 x 2 cells, each keeping both models'
confidence sums, so one multinomial draw over the cells resamples the items for both models at
once, and each replicate's ECEs use the cells' mean confidences, as the single run's do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from assay.core.accumulators.calibration import bin_index
from assay.core.batch import ScoredBatch
from assay.core.comparison import OVERALL, Delta
from assay.core.intervals import (
    MIN_MEAN_ITEMS,
    IntervalConfig,
    draw_multinomial,
    percentile_interval,
)

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class PairedCalibrationState:
    counts: I64  # [cells]: cell = ((cand_bin * 2 + cand_right) * bins + base_bin) * 2 + base_right
    cand_confidence: F  # [cells]: the candidate's confidence summed per cell
    base_confidence: F


@dataclass(frozen=True)
class PairedCalibrationAccumulator:
    n_bins: int = 15
    name: str = "ece"

    @property
    def size(self) -> int:
        return (2 * self.n_bins) ** 2

    def empty(self) -> PairedCalibrationState:
        return PairedCalibrationState(
            np.zeros(self.size, np.int64), np.zeros(self.size), np.zeros(self.size)
        )

    def update(
        self, state: PairedCalibrationState, base: ScoredBatch, cand: ScoredBatch
    ) -> PairedCalibrationState:
        if cand.n_items == 0:
            return state
        cc, bc = cand.confidence, base.confidence
        c_side = bin_index(cc, self.n_bins) * 2 + (cand.y_pred == cand.y_true)
        b_side = bin_index(bc, self.n_bins) * 2 + (base.y_pred == base.y_true)
        cell = c_side * (2 * self.n_bins) + b_side
        return PairedCalibrationState(
            state.counts + np.bincount(cell, minlength=self.size),
            state.cand_confidence + np.bincount(cell, weights=cc, minlength=self.size),
            state.base_confidence + np.bincount(cell, weights=bc, minlength=self.size),
        )

    def merge(self, a: PairedCalibrationState, b: PairedCalibrationState) -> PairedCalibrationState:
        return PairedCalibrationState(
            a.counts + b.counts,
            a.cand_confidence + b.cand_confidence,
            a.base_confidence + b.base_confidence,
        )

    def _ece(self, counts: F, confidence: F, side: I64, n: int) -> F:
        """ECE per row of ``counts`` [R, cells]: ``side`` gives each cell's bin * 2 + right for
        the model whose ``confidence`` per cell (mean, as counts weigh it) is given."""
        right = (side % 2).astype(np.float64)
        gap = counts * (right - confidence)  # per cell: right answers minus summed confidence
        bins = side // 2
        per_bin = np.zeros((counts.shape[0], self.n_bins))
        for b in range(self.n_bins):
            per_bin[:, b] = gap[:, bins == b].sum(axis=1)
        out: F = np.abs(per_bin).sum(axis=1) / n
        return out

    def delta(self, state: PairedCalibrationState, config: IntervalConfig) -> Delta:
        """The change in ECE; no interval below ``MIN_MEAN_ITEMS`` paired items, or when every
        resample gives the same change."""
        n = int(state.counts.sum())
        if n == 0:
            return Delta(self.name, OVERALL, None, None, None, None, None)
        cells = np.arange(self.size)
        c_side, b_side = cells // (2 * self.n_bins), cells % (2 * self.n_bins)
        with np.errstate(divide="ignore", invalid="ignore"):
            c_mean = np.where(state.counts > 0, state.cand_confidence / state.counts, 0.0)
            b_mean = np.where(state.counts > 0, state.base_confidence / state.counts, 0.0)
        one = state.counts[None].astype(np.float64)
        cand = float(self._ece(one, c_mean, c_side, n)[0])
        base = float(self._ece(one, b_mean, b_side, n)[0])
        if n < MIN_MEAN_ITEMS:
            return Delta(self.name, OVERALL, base, cand, cand - base, None, None, n_items=n)
        draws = draw_multinomial(state.counts, config, salt="paired:" + self.name)
        draws_f = draws.astype(np.float64)
        reps = self._ece(draws_f, c_mean, c_side, n) - self._ece(draws_f, b_mean, b_side, n)
        if float(np.ptp(reps)) == 0.0:
            return Delta(self.name, OVERALL, base, cand, cand - base, None, None, n_items=n)
        low, high = percentile_interval(reps, config.confidence)
        delta = cand - base
        # ECE is biased upwards in every resample; the interval is widened to hold its estimate.
        low, high = min(low, delta), max(high, delta)
        return Delta(self.name, OVERALL, base, cand, delta, low, high, reps, n)
