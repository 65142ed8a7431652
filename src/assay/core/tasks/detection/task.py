"""DetectionTask: boxes in, each image judged against the experts' boxes.

The model's boxes are read as the spec says (``box_format``, ``normalized``) and brought to the
pixels of the stored image, the frame the experts drew in. The **item-level decision**: an image
is right when every expert box is found by a model box of its class at IoU >= ``iou_threshold``
and no model box at or above the score ``threshold`` is false (``match_objects``). Its expert
class is "defect" when an expert drew a (non-crowd) box, else "good"; its predicted class is the
expert's when right and the other one when not, so that accuracy is the share of images right and
the paired comparisons of classifiers apply unchanged. Its score is its best box's score.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from assay.core.accumulators import Accumulator, Finalized
from assay.core.batch import ScoredBatch
from assay.core.intervals import IntervalConfig
from assay.core.metric_value import MetricValue
from assay.core.prepared import PreparedBatch
from assay.core.spec import ImageInput, ModelSpec, RecordedInput
from assay.core.tasks.base import GOOD_DEFECT, I64, F, Judged, decision_accumulators, judged_batch
from assay.core.tasks.detection.confusion import ObjectConfusion, match_objects
from assay.core.tasks.detection.matching import MAX_DETECTIONS
from assay.core.tasks.detection.mean_ap import (
    COCO_SUMMARY,
    RECALL_POINTS,
    BoxState,
    CocoBoxEvaluation,
    DetectionImage,
)
from assay.core.tasks.detection.tide import TideErrors, TideState

ITEM_LABELS = GOOD_DEFECT
DEFAULT_SCORE_THRESHOLD = 0.5


@dataclass(frozen=True)
class ExpertBoxes:
    """An image's expert boxes, [x, y, width, height] in the stored image's pixels."""

    boxes: F
    classes: I64
    areas: F
    crowd: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ModelBoxes:
    """A batch's raw detections, padded to one length: boxes [N, D, 4], scores and classes
    [N, D] (class < 0: padding)."""

    boxes: F
    scores: F
    classes: F


def to_xywh(boxes: F, box_format: str) -> F:
    """Boxes in ``box_format`` as [x, y, width, height]."""
    out = boxes.astype(np.float64, copy=True)
    if box_format == "xyxy":
        out[:, 2:] = boxes[:, 2:] - boxes[:, :2]
    elif box_format == "cxcywh":
        out[:, :2] = boxes[:, :2] - boxes[:, 2:] / 2.0
    return out


class DetectionTask:
    name = "detection"
    item_labels: tuple[str, ...] = ITEM_LABELS

    def __init__(self, spec: ModelSpec) -> None:
        if not isinstance(spec.input, ImageInput | RecordedInput):
            raise ValueError("detection takes images")
        self.spec = spec
        # The model input's height and width; None: boxes recorded in the stored image's pixels.
        self.input_size = spec.input.size if isinstance(spec.input, ImageInput) else None
        self.score_threshold = DEFAULT_SCORE_THRESHOLD if spec.threshold is None else spec.threshold

    def decode(self, raw: Any, n: int) -> ModelBoxes:
        boxes = np.asarray(raw["boxes"], dtype=np.float64)
        scores = np.asarray(raw["scores"], dtype=np.float64)
        classes = np.asarray(raw["classes"], dtype=np.float64)
        if boxes.ndim != 3 or boxes.shape[0] != n or boxes.shape[2] != 4:
            raise ValueError(f"the model returned boxes of shape {list(boxes.shape)} for {n} items")
        if scores.shape != boxes.shape[:2] or classes.shape != boxes.shape[:2]:
            raise ValueError(
                f"the model returned boxes {list(boxes.shape)}, scores {list(scores.shape)} and "
                f"classes {list(classes.shape)}: one score and class per box needed"
            )
        return ModelBoxes(boxes, scores, classes)

    def combine(self, parts: Sequence[ModelBoxes | None]) -> ModelBoxes:
        d = max((p.scores.shape[1] for p in parts if p is not None), default=0)
        out = ModelBoxes(
            np.zeros((len(parts), d, 4)), np.zeros((len(parts), d)), np.full((len(parts), d), -1.0)
        )
        for j, p in enumerate(parts):
            if p is not None:
                m = p.scores.shape[1]
                out.boxes[j, :m], out.scores[j, :m], out.classes[j, :m] = (
                    p.boxes[0],
                    p.scores[0],
                    p.classes[0],
                )
        return out

    def _model_boxes(
        self, outputs: ModelBoxes, j: int, size: npt.NDArray[np.int64]
    ) -> tuple[F, F, I64] | str:
        """One image's boxes in its stored pixels, scores and class indices; or why not."""
        keep = ~(outputs.classes[j] < 0)  # padding; a NaN class is no padding but an error
        boxes, scores, classes = (
            outputs.boxes[j][keep],
            outputs.scores[j][keep],
            outputs.classes[j][keep],
        )
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            return "model output is not finite (a box or score is NaN or infinite)"
        if not np.isfinite(classes).all():
            return "model output is not finite (a class is NaN or infinite)"
        if (classes != np.round(classes)).any():
            odd = float(classes[classes != np.round(classes)][0])
            return f"model gave a class index that is not a whole number ({odd:g})"
        if (classes >= self.spec.n_classes).any():
            return f"model gave a class index outside 0..{self.spec.n_classes - 1}"
        xywh = to_xywh(boxes, self.spec.output.box_format)
        width, height = float(size[0]), float(size[1])
        if self.spec.output.normalized:
            sx, sy = width, height
        elif self.input_size is None:
            sx = sy = 1.0
        else:
            sx, sy = width / self.input_size[1], height / self.input_size[0]
        xywh *= np.array([sx, sy, sx, sy])
        if (xywh[:, 2:] < 0).any():
            return "model gave a box of negative size (is output.box_format right?)"
        return xywh, scores, classes.astype(np.int64)

    def judge(
        self,
        prepared: PreparedBatch,
        rows: I64,
        outputs: ModelBoxes,
        errors: dict[int, str],
        offset: int,
    ) -> Judged:
        n = prepared.n_items
        expected = prepared.expected if prepared.expected is not None else [None] * n
        sizes = prepared.sizes if prepared.sizes is not None else np.zeros((n, 2), np.int64)
        predicted = np.full(n, -1, np.int64)
        scores = np.full((n, 2), np.nan)
        labels: list[str | None] = [None] * n
        drawn: list[Any] = [None] * n
        judged: list[int] = []
        y_true: list[int] = []
        detail: list[DetectionImage] = []
        for j, i in enumerate(rows.tolist()):
            gt = expected[i]
            if isinstance(gt, ExpertBoxes):
                labels[i] = ITEM_LABELS[int((~gt.crowd).any())]
            if i in errors:
                continue
            found = self._model_boxes(outputs, j, sizes[i])
            if isinstance(found, str):
                errors[i] = found
                continue
            boxes, box_scores, classes = found
            order = np.argsort(-box_scores, kind="mergesort")
            # Each class's 100 best (what COCO's largest maxDets reads per image and class), so
            # that the boxes kept are the boxes scored: a comparison evaluates them again.
            rank = np.empty(order.size, np.int64)
            for k in np.unique(classes):
                mine = order[classes[order] == k]
                rank[mine] = np.arange(mine.size)
            order = order[rank[order] < MAX_DETECTIONS[-1]]
            drawn[i] = [
                {
                    "name": self.spec.labels[int(classes[d])],
                    "x": float(boxes[d, 0]),
                    "y": float(boxes[d, 1]),
                    "width": float(boxes[d, 2]),
                    "height": float(boxes[d, 3]),
                    "score": float(box_scores[d]),
                }
                for d in order
            ]
            best = float(np.clip(box_scores.max(), 0.0, 1.0)) if box_scores.size else 0.0
            scores[i] = (1.0 - best, best)
            if not isinstance(gt, ExpertBoxes):
                errors[i] = gt if isinstance(gt, str) else "no expert boxes for this image"
                continue
            truth = int((~gt.crowd).any())
            outcome = match_objects(
                gt.boxes,
                gt.classes,
                boxes,
                box_scores,
                classes,
                self.spec.iou_threshold,
                self.score_threshold,
                gt.crowd,
            )
            predicted[i] = truth if outcome.right else 1 - truth
            judged.append(i)
            y_true.append(truth)
            detail.append(
                DetectionImage(
                    offset + i, gt.boxes, gt.classes, boxes, box_scores, classes, gt.areas, gt.crowd
                )
            )
        batch, at = judged_batch(prepared, judged, y_true, predicted, scores, detail)
        return Judged(batch, at, predicted, scores, errors, labels, {"boxes": drawn})

    def accumulators(
        self, intervals: IntervalConfig, auc_mode: Literal["exact", "binned"], n_examples: int
    ) -> list[Accumulator[Any]]:
        return [
            *decision_accumulators(ITEM_LABELS, intervals, n_examples),
            BoxMetrics(self.spec.labels, intervals),
            ObjectConfusionAccumulator(
                self.spec.labels, self.spec.iou_threshold, self.score_threshold
            ),
            TideAccumulator(self.spec.labels),
            ScoreRange(),
        ]

    def prediction_fields(self) -> dict[str, str]:
        return {"boxes": "boxes"}

    def rule(self) -> str:
        return (
            f"an image is right when every expert box is found by a model box of its class at "
            f"IoU >= {self.spec.iou_threshold:g} and no model box scoring >= "
            f"{self.score_threshold:g} is false"
        )


class BoxMetrics:
    """COCO box mAP, mAR and per-class AP, AP50 and AR100 (``CocoBoxEvaluation``), each with a
    bootstrap interval over images."""

    name = "coco_boxes"

    def __init__(self, labels: tuple[str, ...], intervals: IntervalConfig) -> None:
        self.evaluation = CocoBoxEvaluation(labels)
        self.intervals = intervals

    def empty(self) -> BoxState:
        return self.evaluation.empty()

    def update(self, state: BoxState, batch: ScoredBatch) -> BoxState:
        return self.evaluation.update(state, list(batch.detail))

    def merge(self, a: BoxState, b: BoxState) -> BoxState:
        return self.evaluation.merge(a, b)

    def finalize(self, state: BoxState) -> Finalized:
        values = self.evaluation.finalize(state)
        cis = self.evaluation.intervals(state, self.intervals) if self.intervals.n_resamples else {}
        out = Finalized()
        for name in COCO_SUMMARY:  # every summary number: an image bootstrap
            out.metrics[name] = _bootstrapped(values[name], cis.get(name))
        for label, per in values["per_class"].items():
            out.per_class[label] = {
                name: _bootstrapped(per[name], cis.get(f"{name}[{label}]"))
                for name in ("ap", "ap_50", "ar_100")
            }
        precision, _ = self.evaluation.tables(state)
        curves = {}
        for k, label in enumerate(self.evaluation.labels):
            # IoU 0.5, all sizes, up to 100 detections: pycocotools' interpolated precision at
            # its 101 recall points (absent where the class has no box).
            column = precision[0, :, k, 0, 2]
            if (column > -1).any():
                curves[label] = {
                    "recall": RECALL_POINTS.tolist(),
                    "precision": [max(float(v), 0.0) for v in column],
                }
        out.extras["detection"] = {
            "n_images": state.n_images,
            "n_boxes": {label: per["n_boxes"] for label, per in values["per_class"].items()},
            "pr_curves_iou_50": curves,
        }
        return out


def _bootstrapped(value: float | None, ci: tuple[float, float] | None) -> MetricValue:
    return MetricValue.of(value, ci, "bootstrap" if ci else None)


class ScoreRange:
    """How many model boxes scored outside [0, 1]: logits, perhaps, where the spec's ``threshold``
    expects probabilities. Rankings (AP) do not mind; the threshold and the image's score do."""

    name = "score_range"

    def empty(self) -> tuple[int, int]:
        return (0, 0)

    def update(self, state: tuple[int, int], batch: ScoredBatch) -> tuple[int, int]:
        outside, total = state
        for image in batch.detail:
            s = image.dt_scores
            outside += int(((s < 0) | (s > 1)).sum())
            total += int(s.size)
        return (outside, total)

    def merge(self, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
        return (a[0] + b[0], a[1] + b[1])

    def finalize(self, state: tuple[int, int]) -> Finalized:
        return Finalized(extras={"box_scores": {"outside_0_1": state[0], "n_boxes": state[1]}})


class TideAccumulator:
    """TIDE's error types, each with its count and the AP50 it costs (``tide.TideErrors``)."""

    name = "tide"

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.tide = TideErrors(labels)

    def empty(self) -> TideState:
        return self.tide.empty()

    def update(self, state: TideState, batch: ScoredBatch) -> TideState:
        return self.tide.update(state, list(batch.detail))

    def merge(self, a: TideState, b: TideState) -> TideState:
        return self.tide.merge(a, b)

    def finalize(self, state: TideState) -> Finalized:
        return Finalized(extras={"tide": self.tide.finalize(state)})


class ObjectConfusionAccumulator:
    """The object confusion matrix at the spec's IoU and score thresholds."""

    name = "object_confusion"

    def __init__(self, labels: tuple[str, ...], iou: float, score: float) -> None:
        self.confusion = ObjectConfusion(labels, iou, score)

    def empty(self) -> I64:
        return self.confusion.empty()

    def update(self, state: I64, batch: ScoredBatch) -> I64:
        state = state.copy()
        for image in batch.detail:
            self.confusion.add(
                state,
                image.gt_boxes,
                image.gt_classes,
                image.dt_boxes,
                image.dt_scores,
                image.dt_classes,
                image.gt_crowd,
            )
        return state

    def merge(self, a: I64, b: I64) -> I64:
        return self.confusion.merge(a, b)

    def finalize(self, state: I64) -> Finalized:
        c = self.confusion
        return Finalized(
            extras={
                "object_confusion": {
                    "labels": [*c.labels, "background"],
                    "matrix": state.tolist(),
                    "iou_threshold": c.iou_threshold,
                    "score_threshold": c.score_threshold,
                }
            }
        )
