"""Object confusion and the image-level decision of a detector, at a stated IoU and score.

Both rest on one matching of an image's boxes, in two rounds: the model's boxes at or above the
score threshold, best first, each take the still unmatched expert box *of their class* they
overlap most (IoU at least the threshold; on equal IoU the first expert box); then the boxes
left, best first, take the unmatched expert box of any class they overlap most. The second
round is what lets the matrix show a scratch called an inclusion (a class-aware matching alone
would report it as one missed scratch and one false inclusion); the first keeps a box from
taking a neighbour of another class that overlaps it more than its own (a review: an
inclusion box found inside a crazing box, each by a box of its class, was counted as two
confusions and the image wrong, at map_50 1.0).

- The **object confusion matrix** has a row per expert class and a column per model class, plus
  "background": an expert box nothing matched is counted in its row's background column (missed),
  a model box that matched nothing in the background row (a false alarm). Row sums are the
  expert's boxes, column sums the model's boxes at or above the threshold. Crowd boxes are left
  out, and so are the model boxes that match only a crowd.
- An **image is right** when every expert box is matched by a box of its own class and no model
  box at or above the threshold is left unmatched or of another class: the item-level decision
  that paired comparison, slices and galleries use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from assay.core.tasks.detection.iou import box_iou

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ImageOutcome:
    """One image at the stated IoU and score: each expert box's matched model box (-1: none),
    each kept model box's matched expert box (-1: none), and the counts they give."""

    gt_match: I64
    dt_match: I64
    kept: I64  # indices of the model boxes at or above the score threshold, best first
    in_crowd: npt.NDArray[np.bool_]  # per kept box: unmatched, but inside a crowd box
    missed: int
    false_alarms: int
    wrong_class: int

    @property
    def right(self) -> bool:
        return self.missed == 0 and self.false_alarms == 0 and self.wrong_class == 0


def match_objects(
    gt_boxes: F,
    gt_classes: I64,
    dt_boxes: F,
    dt_scores: F,
    dt_classes: I64,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
    gt_crowd: npt.NDArray[np.bool_] | None = None,
) -> ImageOutcome:
    crowd = np.zeros(len(gt_classes), bool) if gt_crowd is None else gt_crowd
    kept = np.flatnonzero(dt_scores >= score_threshold)
    kept = kept[np.argsort(-dt_scores[kept], kind="mergesort")]
    ious = box_iou(dt_boxes[kept], gt_boxes, crowd)
    gt_match = np.full(len(gt_classes), -1, np.int64)
    dt_match = np.full(kept.size, -1, np.int64)
    in_crowd = np.zeros(kept.size, bool)
    for same_class in (True, False):
        for d in np.flatnonzero(dt_match < 0).tolist():
            free = (gt_match < 0) & ~crowd & (ious[d] >= iou_threshold)
            if same_class:
                free &= gt_classes == dt_classes[kept[d]]
            if free.any():
                g = int(np.argmax(np.where(free, ious[d], -1.0)))
                gt_match[g], dt_match[d] = kept[d], g
    for d in np.flatnonzero(dt_match < 0).tolist():
        in_crowd[d] = bool((crowd & (ious[d] >= iou_threshold)).any())
    counted = ~crowd
    matched = dt_match >= 0
    wrong = int((gt_classes[dt_match[matched]] != dt_classes[kept[matched]]).sum())
    return ImageOutcome(
        gt_match,
        dt_match,
        kept,
        in_crowd,
        missed=int(((gt_match < 0) & counted).sum()),
        false_alarms=int((~matched & ~in_crowd).sum()),
        wrong_class=wrong,
    )


class ObjectConfusion:
    """The mergeable object confusion matrix: [expert class or background, model class or
    background], background last."""

    name = "object_confusion"

    def __init__(
        self, labels: tuple[str, ...], iou_threshold: float = 0.5, score_threshold: float = 0.5
    ):
        self.labels = labels
        self.iou_threshold, self.score_threshold = iou_threshold, score_threshold

    def empty(self) -> I64:
        k = len(self.labels) + 1
        return np.zeros((k, k), np.int64)

    def add(
        self,
        state: I64,
        gt_boxes: F,
        gt_classes: I64,
        dt_boxes: F,
        dt_scores: F,
        dt_classes: I64,
        gt_crowd: npt.NDArray[np.bool_] | None = None,
    ) -> ImageOutcome:
        """Count one image into ``state`` (in place); returns its outcome."""
        outcome = match_objects(
            gt_boxes,
            gt_classes,
            dt_boxes,
            dt_scores,
            dt_classes,
            self.iou_threshold,
            self.score_threshold,
            gt_crowd,
        )
        background = len(self.labels)
        crowd = np.zeros(len(gt_classes), bool) if gt_crowd is None else gt_crowd
        for g in np.flatnonzero(~crowd):
            d = outcome.gt_match[g]
            state[gt_classes[g], background if d < 0 else dt_classes[d]] += 1
        for j, d in enumerate(outcome.kept):
            if outcome.dt_match[j] < 0 and not outcome.in_crowd[j]:
                state[background, dt_classes[d]] += 1
        return outcome

    def merge(self, a: I64, b: I64) -> I64:
        merged: I64 = a + b
        return merged
