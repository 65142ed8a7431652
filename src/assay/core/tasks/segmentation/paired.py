"""A segmentation model's numbers against the baseline's, on the same images, paired.

Each image both models judged gives each model its per-class [TP, FP, FN] pixel counts and its
boundary counts (what a single run keeps per image, ``SegmentationMetrics``). A resample weights
the images, one set of draws for both models: the change's replicate is the candidate's mean
IoU (pixel accuracy, boundary F1, a class's IoU or Dice) minus the baseline's on the same
weighted images, which keeps what the two share (the same hard images) out of the interval, as
a detector's paired COCO numbers do (``services.paired_boxes``).

A sample shows only the failures it holds: a candidate that loses a whole defect on one image
in twenty, compared on ten images, showed no loss in most samples, and every resample of those
said "no change" (a hostile review: 60% of such candidates passed "no mean IoU regression of
0.01"). So, as the paired confusion bootstrap adds Agresti and Min's half a broken and half a
fixed item, the resamples may also draw, per defect class (every class but the background), half
an image the candidate misses whole where the baseline draws it right, and half the reverse:
its experts' pixels and boundary are the class's mean over the images holding it, the missed
pixels called background. Symmetric, it widens both sides, by less as the images grow.

The estimates are both models' numbers on these images (the images either run failed on are
left out of both). Below ``MIN_IMAGES`` images (per class: images where the expert's or either
model's pixels hold it), or when every resample gives the same change (two models that draw the
same masks, on images without a defect class), there is no interval: a check on the change
cannot pass on nothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from assay.core.comparison import OVERALL, Delta
from assay.core.intervals import (
    IntervalConfig,
    multinomial_chunks,
    percentile_interval,
    pseudo_shares,
)
from assay.core.tasks.segmentation.pixel_confusion import PixelState, enough_images
from assay.core.tasks.segmentation.pseudo import pseudo_images
from assay.core.tasks.segmentation.task import SegmentationMetrics, SegmentationState

I64 = npt.NDArray[np.int64]
F = npt.NDArray[np.float64]
# Resamples weighted at once: [chunk, images] floats (64 x 100,000 images: 51 MB).
CHUNK = 64


def segmentation_changes(
    labels: tuple[str, ...],
    tolerance: int,
    candidate: tuple[I64, I64],
    baseline: tuple[I64, I64],
    config: IntervalConfig,
    background: int = 0,
) -> dict[str, Delta]:
    """``mean_iou``, ``pixel_accuracy``, ``boundary_f1`` and each class's ``iou`` and ``dice``:
    candidate minus baseline. Each model gives its images' pixel counts [images, K, 3] (TP, FP,
    FN) and boundary counts [images, K, 4], the images in the same order; ``background``: the
    class a missed defect's pixels are called."""
    n = int(candidate[0].shape[0])
    if n == 0:
        return {}
    metrics = SegmentationMetrics(labels, config, tolerance)
    extra_c, extra_b = pseudo_images(candidate[0], candidate[1], background)
    m = n + int(extra_c[0].shape[0])
    orders = np.arange(m, dtype=np.int64)
    states = [
        SegmentationState(
            PixelState(
                np.zeros((len(labels), len(labels)), np.int64),
                [orders],
                [np.concatenate([pixels, more[0]]).astype(np.float64)],
            ),
            edges.sum(axis=0),
            [np.concatenate([edges, more[1]]).astype(np.float64)],
        )
        for (pixels, edges), more in ((candidate, extra_c), (baseline, extra_b))
    ]

    def replicates(weights: F) -> list[dict[str, F]]:
        return [
            metrics.pixels.replicates(s.pixels, orders, weights)
            | metrics.boundary_replicates(s, config, weights)
            for s in states
        ]

    # The estimates: the real images; the pseudo ones weigh nothing.
    point_c, point_b = replicates(np.r_[np.ones(n), np.zeros(m - n)][None])
    changes: dict[str, list[F]] = {name: [] for name in point_c}
    # A class's numbers with its own half images; the numbers over every class with one budget
    # the classes share (``pseudo_shares``).
    for spread in (False, True):
        shares = pseudo_shares(n, m - n, (m - n) // 2 if spread else 1)
        salt = f"paired:segmentation{':spread' if spread else ''}"
        for draws in multinomial_chunks(shares, config, salt=salt, total=n, chunk=CHUNK):
            cand, base = replicates(draws.astype(np.float64))
            for name in changes:
                if ("[" not in name) == spread:
                    changes[name].append(cand[name] - base[name])
    # Images where a class occurs: in the expert's pixels (TP + FN, alike for both models) or in
    # either model's.
    holding: I64 = ((candidate[0].sum(axis=-1) + baseline[0].sum(axis=-1)) > 0).sum(axis=0)
    out = {}
    for name, parts in changes.items():
        if name.startswith("boundary_f1["):
            continue  # not a number a policy checks per class
        vc, vb = float(point_c[name][0]), float(point_b[name][0])
        defined = np.isfinite(vc) and np.isfinite(vb)
        reps = np.concatenate(parts) if parts else np.empty(0)
        finite = reps[np.isfinite(reps)]
        delta = vc - vb if defined else None
        interval = None
        if (
            delta is not None
            and enough_images(name, n, holding, labels)
            and finite.size > 1
            and float(np.ptp(finite)) > 0.0
        ):
            low, high = percentile_interval(reps, config.confidence)
            if np.isfinite(low) and np.isfinite(high):
                interval = (min(low, delta), max(high, delta))
        out[name] = Delta(
            name,
            OVERALL,
            vb if defined else None,
            vc if defined else None,
            delta,
            None if interval is None else interval[0],
            None if interval is None else interval[1],
            reps if interval is not None else np.empty(0),
            n,
        )
    return out
