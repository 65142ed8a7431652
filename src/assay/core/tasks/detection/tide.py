"""TIDE: what each kind of detection error costs in AP50 (Bolya et al., ECCV 2020).

Every false positive at IoU 0.5 is given one type, in TIDE's order of tests: **localisation**
(its best box of its own class overlaps at 0.1 <= IoU <= 0.5), **classification** (a box of
another class at IoU >= 0.5), **duplicate** (a box of its class already found at IoU >= 0.5),
**background** (no box at IoU > 0.1), else **both** (wrong class and poorly placed). An expert
box that no detection found nor could be fixed to find is **missed**. Each type's cost is the AP50
gained when only that type is fixed, as TIDE fixes it: a localisation or classification error
becomes the true positive of its expert box (the highest-scoring one of the errors pointing at
it; the others are dropped), duplicates, background and "both" errors are dropped, and a missed
box leaves the count of expert boxes. AP is TIDE's (101 recall points, mean over the classes with
boxes or detections), images match as TIDE matches them (at most 100 detections per image, best
score first; detections inside crowd regions at IoU > 0.5 ignored).

The state is one record per detection and per expert box that matters, merged by
concatenation; ``finalize`` sorts them as TIDE's lists are ordered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from assay.core.tasks.detection.iou import box_iou
from assay.core.tasks.detection.mean_ap import DetectionImage

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

POS, BKG = 0.5, 0.1
MAX_DETS = 100
TYPES = ("classification", "localisation", "both", "duplicate", "background", "missed")
TRUE, CLS, LOC, BOTH, DUPE, BG = -1, 0, 1, 2, 3, 4
# TIDE's recall points, x / 100 (not pycocotools' linspace: 7 / 100 differs from 7 * 0.01).
RECALL_POINTS = np.arange(101) / 100


@dataclass
class TideState:
    """Per detection: image position, rank in its image, class, score, kind (TRUE or an error
    type), and its fix (class and whether it becomes a true positive; -1 class: dropped). Per
    class, the expert boxes counted and the missed ones."""

    parts: list[dict[str, np.ndarray]] = field(default_factory=list)
    n_gt: dict[int, int] = field(default_factory=dict)
    missed: dict[int, int] = field(default_factory=dict)


def _image(image: DetectionImage) -> tuple[dict[str, np.ndarray], dict[int, int], dict[int, int]]:
    crowd = image.gt_crowd if image.gt_crowd is not None else np.zeros(len(image.gt_classes), bool)
    gt, gt_cls = image.gt_boxes[~crowd], image.gt_classes[~crowd]
    ignore, ignore_cls = image.gt_boxes[crowd], image.gt_classes[crowd]
    n_gt = {int(c): int((gt_cls == c).sum()) for c in np.unique(gt_cls)}
    order = np.argsort(-image.dt_scores, kind="stable")[:MAX_DETS]
    boxes, scores, classes = image.dt_boxes[order], image.dt_scores[order], image.dt_classes[order]
    n = order.size
    kind = np.full(n, TRUE, np.int64)
    fix_class = np.full(n, -1, np.int64)
    keep = np.ones(n, bool)
    missed: dict[int, int] = {}
    if n == 0:
        for c in gt_cls.tolist():
            missed[c] = missed.get(c, 0) + 1
        return _record(image.order, order, classes, scores, kind, fix_class, keep), n_gt, missed
    iou = box_iou(boxes, gt, np.zeros(len(gt), bool))
    same = classes[:, None] == gt_cls[None, :]
    cls_iou = iou * same
    used = np.zeros(len(gt), bool)
    matched = np.zeros(n, bool)
    buffer = cls_iou.copy()
    for d in range(n):
        if len(gt) == 0:
            break
        g = int(np.argmax(buffer[d]))
        if buffer[d, g] >= POS:
            matched[d] = used[g] = True
            buffer[:, g] = 0.0
    if len(ignore):
        crowd_iou = box_iou(boxes, ignore, np.ones(len(ignore), bool))
        for r in range(len(ignore)):
            hit = ~matched & (crowd_iou[:, r] > POS) & (classes == ignore_cls[r])
            keep &= ~hit
    usable = np.zeros(len(gt), bool)
    best = np.full(len(gt), -1, np.int64)  # the detection whose fix finds each expert box
    best_score = np.full(len(gt), -1.0)
    for d in range(n):
        if matched[d] or not keep[d]:
            continue
        if len(gt) == 0:
            kind[d] = BG
            continue
        g = int(np.argmax(cls_iou[d]))
        if BKG <= cls_iou[d, g] <= POS:
            kind[d] = LOC
        else:
            other = iou[d] * ~same[d]
            g = int(np.argmax(other))
            if other[g] >= POS:
                kind[d] = CLS
            else:
                dupes = cls_iou[d] * used
                if dupes.max() >= POS:
                    kind[d] = DUPE
                elif iou[d].max() <= BKG:
                    kind[d] = BG
                else:
                    kind[d] = BOTH
                continue
        if not used[g]:  # TIDE's BestGTMatch: the highest score pointing at a free box wins
            usable[g] = True
            if best_score[g] < scores[d]:
                best_score[g], best[g] = scores[d], d
        fix_class[d] = -2 - g  # resolved below, once every candidate of the image is known
    for e in np.flatnonzero(fix_class <= -2).tolist():
        target = -2 - int(fix_class[e])
        fix_class[e] = (
            (int(gt_cls[target]) if kind[e] == CLS else int(classes[e]))
            if best[target] == e
            else -1
        )
    for c in gt_cls[~used & ~usable].tolist():
        missed[c] = missed.get(c, 0) + 1
    return _record(image.order, order, classes, scores, kind, fix_class, keep), n_gt, missed


def _record(
    image: int,
    order: I64,
    classes: I64,
    scores: F,
    kind: I64,
    fix_class: I64,
    keep: npt.NDArray[np.bool_],
) -> dict[str, np.ndarray]:
    return {
        "image": np.full(int(keep.sum()), image, np.int64),
        "rank": np.arange(order.size, dtype=np.int64)[keep],
        "cls": classes[keep].astype(np.int64),
        "score": scores[keep].astype(np.float64),
        "kind": kind[keep],
        "fix": fix_class[keep],
    }


class TideErrors:
    """The accumulator over images: ``empty``, ``update``, ``merge``, ``finalize``."""

    name = "tide"

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels

    def empty(self) -> TideState:
        return TideState()

    def update(self, state: TideState, images: list[DetectionImage]) -> TideState:
        out = TideState(list(state.parts), dict(state.n_gt), dict(state.missed))
        for image in images:
            record, n_gt, missed = _image(image)
            out.parts.append(record)
            for target, counts in ((out.n_gt, n_gt), (out.missed, missed)):
                for c, v in counts.items():
                    target[c] = target.get(c, 0) + v
        return out

    def merge(self, a: TideState, b: TideState) -> TideState:
        n_gt, missed = dict(a.n_gt), dict(a.missed)
        for target, counts in ((n_gt, b.n_gt), (missed, b.missed)):
            for c, v in counts.items():
                target[c] = target.get(c, 0) + v
        return TideState(a.parts + b.parts, n_gt, missed)

    def finalize(self, state: TideState) -> dict[str, object]:
        """AP50 as TIDE computes it, each error type's count and the AP50 it costs."""
        r = _joined(state.parts)
        n_gt = dict(state.n_gt)
        base = _map(
            r["cls"], r["score"], r["kind"] == TRUE, np.zeros(r["cls"].size, np.int64), r, n_gt
        )
        errors: dict[str, dict[str, float | int | None]] = {}
        for code, name in enumerate(TYPES):
            if name == "missed":
                count = sum(state.missed.values())
                fixed_gt = {c: v - state.missed.get(c, 0) for c, v in n_gt.items()}
                # Errors first, true positives after, as TIDE's fixed list is built.
                group = (r["kind"] == TRUE).astype(np.int64)
                value = _map(r["cls"], r["score"], r["kind"] == TRUE, group, r, fixed_gt)
            else:
                mine = r["kind"] == code
                count = int(mine.sum())
                keep = ~mine | (r["fix"] >= 0)
                cls = np.where(mine, r["fix"], r["cls"])
                true = (r["kind"] == TRUE) | mine
                group = (r["kind"] == TRUE).astype(np.int64)
                sub = {k: v[keep] for k, v in r.items()}
                value = _map(cls[keep], r["score"][keep], true[keep], group[keep], sub, n_gt)
            cost = None if base is None or value is None else max(value - base, 0.0)
            errors[name] = {"count": count, "ap50_cost": cost}
        return {"ap50": base, "errors": errors, "iou_foreground": POS, "iou_background": BKG}


def _joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = ("image", "rank", "cls", "score", "kind", "fix")
    if not parts:
        return {k: np.zeros(0, np.float64 if k == "score" else np.int64) for k in keys}
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


def _map(
    cls: I64,
    score: F,
    true: npt.NDArray[np.bool_],
    group: I64,
    r: dict[str, np.ndarray],
    n_gt: dict[int, int],
) -> float | None:
    """TIDE's mAP: per class, records by score (ties: ``group``, then dataset order), precision
    made monotone, read at 101 recall points; the mean over classes with boxes or records."""
    aps = []
    for c in sorted(set(n_gt) | set(np.unique(cls).tolist())):
        mine = cls == c
        positives = n_gt.get(c, 0)
        if not mine.any() and positives == 0:
            continue
        if positives == 0:
            aps.append(0.0)
            continue
        if not mine.any():
            aps.append(0.0)
            continue
        order = np.lexsort((r["rank"][mine], r["image"][mine], group[mine], -score[mine]))
        t = true[mine][order]
        tp = np.cumsum(t)
        precision = tp / np.arange(1, t.size + 1)
        recall = tp / positives
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        at = np.searchsorted(recall, RECALL_POINTS, side="left")
        values = np.where(at < precision.size, precision[np.minimum(at, precision.size - 1)], 0.0)
        aps.append(float(values.mean()))
    return float(np.mean(aps)) if aps else None
