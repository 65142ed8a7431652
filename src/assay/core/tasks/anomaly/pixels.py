"""PixelAnomaly: pixel AUROC and AUPRO (to FPR 0.3, as the MVTec AD evaluation) in mergeable states.

AUPRO weighs every defect region equally, however many pixels it has: at each threshold, PRO is
the mean over the test set's regions (connected components of the expert masks) of the share of
the region's pixels scored at or above it, and the curve of PRO against the false-positive rate
of good pixels is integrated from 0 to 0.3 and divided by 0.3. The MVTec formula sorts every
pixel of the test set; here each image adds its pixels to three histograms (good pixels;
defect pixels; defect pixels weighted by 1 / their region's size), so states merge by addition
and memory stays fixed however many images there are. Scores are binned by the top 20 bits of
their float32 representation (sign, exponent, 11 of 23 mantissa bits: bins 0.05% wide relative
to the score, whatever its range), so no score range needs to be known in advance. Scores with
no more precision than that give exactly the MVTec values (tested); others, values within the
bins' resolution.

Regions come labelled by the caller (``assay.analysis.regions.label_regions``: 8-connected, as
the MVTec evaluation labels them), one integer per pixel, 0 for good pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

KEY_BITS = 20
N_BINS = 1 << KEY_BITS
MAX_FPR = 0.3


def score_bins(scores: npt.NDArray[np.floating[Any]]) -> I64:
    """Bin index of each score: its float32 bits, ordered as the values, top KEY_BITS kept."""
    values = np.asarray(scores, dtype=np.float32).ravel() + np.float32(0)  # -0.0 counts as 0.0
    bits = values.view(np.uint32)
    negative = (bits >> np.uint32(31)) == 1
    keys = np.where(negative, ~bits, bits | np.uint32(1 << 31))
    out: I64 = (keys >> np.uint32(32 - KEY_BITS)).astype(np.int64)
    return out


@dataclass
class PixelState:
    good: F  # good pixels per bin
    defect: F  # defect pixels per bin
    region_weight: F  # defect pixels per bin, each weighted 1 / its region's size
    n_regions: int = 0


class PixelAnomaly:
    name = "pixel_anomaly"

    def empty(self) -> PixelState:
        return PixelState(np.zeros(N_BINS), np.zeros(N_BINS), np.zeros(N_BINS))

    def add(self, state: PixelState, scores: npt.NDArray[np.floating[Any]], regions: I64) -> None:
        """One image's anomaly map and its regions (0: good; 1..n: the image's defect regions)."""
        if scores.shape != regions.shape:
            raise ValueError(
                f"the anomaly map {scores.shape} and the mask {regions.shape} differ in shape"
            )
        if not np.isfinite(scores).all():
            raise ValueError("the anomaly map holds NaN or infinite scores")
        bins = score_bins(scores)
        labels = regions.ravel().astype(np.int64)
        good = labels == 0
        state.good += np.bincount(bins[good], minlength=N_BINS)
        state.defect += np.bincount(bins[~good], minlength=N_BINS)
        sizes = np.bincount(labels)
        present = np.flatnonzero(sizes[1:]) + 1
        state.n_regions += present.size
        weights = np.zeros(sizes.size)
        weights[present] = 1.0 / sizes[present]
        state.region_weight += np.bincount(bins[~good], weights[labels[~good]], minlength=N_BINS)

    def merge(self, a: PixelState, b: PixelState) -> PixelState:
        return PixelState(
            a.good + b.good,
            a.defect + b.defect,
            a.region_weight + b.region_weight,
            a.n_regions + b.n_regions,
        )

    def finalize(self, state: PixelState) -> dict[str, float | None]:
        n_good, n_defect = state.good.sum(), state.defect.sum()
        if n_good == 0 or n_defect == 0:
            return {"pixel_auroc": None, "aupro": None}
        # Thresholds from the highest bin down: everything in a bin or above is called defect.
        used = np.flatnonzero((state.good + state.defect) > 0)[::-1]
        # Sums of many small weights can pass 1 by a rounding error: clipped, as MVTec's code does.
        fpr = np.concatenate(([0.0], np.minimum(np.cumsum(state.good[used]) / n_good, 1.0)))
        tpr = np.concatenate(([0.0], np.minimum(np.cumsum(state.defect[used]) / n_defect, 1.0)))
        pro = np.cumsum(state.region_weight[used]) / state.n_regions
        pro = np.concatenate(([0.0], np.minimum(pro, 1.0)))
        return {
            "pixel_auroc": float(np.trapezoid(tpr, fpr)),
            "aupro": trapezoid_to(fpr, pro, MAX_FPR) / MAX_FPR,
        }


def trapezoid_to(x: F, y: F, x_max: float) -> float:
    """The area under y(x) from x[0] to ``x_max``, y interpolated linearly at ``x_max`` (the MVTec
    evaluation's ``trapezoid``); ``x`` non-decreasing."""
    inside = x <= x_max
    xs, ys = x[inside], y[inside]
    area = float(np.trapezoid(ys, xs))
    after = np.flatnonzero(~inside)
    if after.size and xs.size:
        j = after[0]
        # Between the last point inside and the first beyond: interpolate at x_max.
        x0, x1, y0, y1 = x[j - 1], x[j], y[j - 1], y[j]
        y_max = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += (x_max - x0) * (y0 + y_max) / 2
    return area
