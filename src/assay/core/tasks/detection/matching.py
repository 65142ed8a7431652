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
    low = np.array([r[1] for r in AREA_RANGES])[:, None]
    high = np.array([r[2] for r in AREA_RANGES])[:, None]
    # [area range, box]: a box that does not count there (a crowd, or outside the range).
    gt_ignore = gt_crowd[None, :] | (gt_areas[None, :] < low) | (gt_areas[None, :] > high)
    n_a, n_t, n_d, n_g = len(AREA_RANGES), thresholds.size, scores.size, gt_areas.size
    matched = np.zeros((n_a, n_t, n_d), bool)
    ignored = np.zeros((n_a, n_t, n_d), bool)
    taken = np.zeros((n_a, n_t, n_g), bool)
    floor = np.minimum(thresholds, 1 - 1e-10)[:, None]
    # pycocotools puts the boxes that count first (a stable sort) and, for each detection, takes
    # the last box of the highest IoU among them, else among the others: the same boxes as
    # taking the last in the original order within each group, so no reordering is needed.
    counts, others = ~gt_ignore[:, None, :], gt_ignore[:, None, :]
    reachable = ious.max(axis=1) >= floor.min() if n_g else np.zeros(n_d, bool)
    for d in np.flatnonzero(reachable):  # a detection below every threshold matches nothing
        free = (~taken | gt_crowd) & (ious[d] >= floor)[None, :, :]
        best = _last_best((free & counts).reshape(n_a * n_t, n_g), ious[d])
        fallback = _last_best((free & others).reshape(n_a * n_t, n_g), ious[d])
        best = np.where(best >= 0, best, fallback).reshape(n_a, n_t)
        a_hit, t_hit = np.nonzero(best >= 0)
        g_hit = best[a_hit, t_hit]
        matched[a_hit, t_hit, d] = True
        ignored[a_hit, t_hit, d] = gt_ignore[a_hit, g_hit]
        taken[a_hit, t_hit, g_hit] = True
    outside = (dt_areas[None, :] < low) | (dt_areas[None, :] > high)
    ignored |= ~matched & outside[:, None, :]
    return ImageMatches(scores, matched, ignored, (~gt_ignore).sum(axis=1).astype(np.int64))


def _last_best(candidates: B, iou: F) -> npt.NDArray[np.intp]:
    """Per threshold (row), the last candidate box of the highest IoU (-1: none)."""
    if candidates.shape[1] == 0:
        return np.full(candidates.shape[0], -1, np.intp)
    values = np.where(candidates, iou[None, :], -np.inf)
    top = values.max(axis=1)
    reversed_first = np.argmax(values[:, ::-1] == top[:, None], axis=1)
    last: npt.NDArray[np.intp] = candidates.shape[1] - 1 - reversed_first
    return np.where(candidates.any(axis=1), last, -1)
