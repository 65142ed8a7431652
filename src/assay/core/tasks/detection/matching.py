"""match_image: pycocotools' evaluateImg, for one image and one class, every area range at once.

The COCO protocol matches detections to ground truth greedily, in order of score: at each IoU
threshold a detection takes the unmatched box it overlaps most (at least the threshold), boxes
that count first; crowd boxes may take several detections, and detections matched to a crowd or
to a box outside the area range are ignored rather than counted wrong, as are unmatched
detections outside the area range. Ties go where pycocotools sends them (the last box of equal
IoU, detections of equal score in their given order), so that every count is pycocotools'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from assay.core.tasks.detection.iou import box_iou

F = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

# pycocotools' defaults (COCOeval Params, iouType "bbox").
IOU_THRESHOLDS: F = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
AREA_RANGES: tuple[tuple[str, float, float], ...] = (
    ("all", 0.0, 1e5**2),
    ("small", 0.0, 32.0**2),
    ("medium", 32.0**2, 96.0**2),
    ("large", 96.0**2, 1e5**2),
)
MAX_DETECTIONS = (1, 10, 100)


@dataclass(frozen=True)
class ImageMatches:
    """One image and class: its detections, best first (at most MAX_DETECTIONS[-1]), whether
    each matched a box [area range, IoU threshold, detection], whether it is ignored there, and
    how many ground-truth boxes count in each area range."""

    scores: F
    matched: B
    ignored: B
    n_gt: npt.NDArray[np.int64]


def match_image(
    dt_boxes: F,
    dt_scores: F,
    gt_boxes: F,
    gt_areas: F,
    gt_crowd: B,
    thresholds: F = IOU_THRESHOLDS,
    max_dets: int = MAX_DETECTIONS[-1],
) -> ImageMatches | None:
    """Boxes are [x, y, width, height]; a ground-truth box's area is given (COCO files state it,
    for a polygon the polygon's); a detection's is its box's. None: nothing to evaluate."""
    if len(dt_scores) == 0 and len(gt_areas) == 0:
        return None
    order = np.argsort(-dt_scores, kind="mergesort")[:max_dets]
    dt, scores = dt_boxes[order], dt_scores[order]
    ious = box_iou(dt, gt_boxes, gt_crowd)
    dt_areas = dt[:, 2] * dt[:, 3]
    n_t, n_d = thresholds.size, scores.size
    matched = np.zeros((len(AREA_RANGES), n_t, n_d), bool)
    ignored = np.zeros((len(AREA_RANGES), n_t, n_d), bool)
    n_gt = np.zeros(len(AREA_RANGES), np.int64)
    floor = np.minimum(thresholds, 1 - 1e-10)[:, None]
    for a, (_, low, high) in enumerate(AREA_RANGES):
        gt_ignore = gt_crowd | (gt_areas < low) | (gt_areas > high)
        n_gt[a] = int((~gt_ignore).sum())
        first = np.argsort(gt_ignore, kind="mergesort")  # boxes that count come first
        iou_a, crowd, ignore = ious[:, first], gt_crowd[first], gt_ignore[first]
        taken = np.zeros((n_t, first.size), bool)
        for d in range(n_d):
            free = (~taken | crowd[None, :]) & (iou_a[d][None, :] >= floor)
            best = _last_best(free & ~ignore[None, :], iou_a[d])
            fallback = _last_best(free & ignore[None, :], iou_a[d])
            best = np.where(best >= 0, best, fallback)
            hit = best >= 0
            rows = np.flatnonzero(hit)
            matched[a, rows, d] = True
            ignored[a, rows, d] = ignore[best[rows]]
            taken[rows, best[rows]] = True
        outside = (dt_areas < low) | (dt_areas > high)
        ignored[a] |= ~matched[a] & outside[None, :]
    return ImageMatches(scores, matched, ignored, n_gt)


def _last_best(candidates: B, iou: F) -> npt.NDArray[np.intp]:
    """Per threshold (row), the last candidate box of the highest IoU (-1: none)."""
    if candidates.shape[1] == 0:
        return np.full(candidates.shape[0], -1, np.intp)
    values = np.where(candidates, iou[None, :], -np.inf)
    top = values.max(axis=1)
    reversed_first = np.argmax(values[:, ::-1] == top[:, None], axis=1)
    last: npt.NDArray[np.intp] = candidates.shape[1] - 1 - reversed_first
    return np.where(candidates.any(axis=1), last, -1)
