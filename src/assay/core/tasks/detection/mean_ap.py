"""CocoBoxEvaluation: COCO mAP and mAR of boxes as pycocotools computes them, in mergeable states.

pycocotools evaluates a whole dataset at once. Here each image is matched on its own
(``match_image``) and its detections kept as records (score, whether matched and ignored per area
range and IoU threshold, the image's position in the dataset and the detection's rank in it);
states of shards merge by concatenation, and ``finalize`` sorts the records as pycocotools'
``accumulate`` does (by score, ties in dataset order) to build the same precision table. The
state grows with the detections, as an exact ROC curve grows with the items.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from assay.core.intervals import (
    MIN_IMAGES,
    IntervalConfig,
    draw_multinomial,
    half_samples,
    hull,
    multinomial_chunks,
    percentile_interval,
    pseudo_shares,
    small_sample_shift,
)
from assay.core.tasks.detection.matching import (
    AREA_RANGES,
    IOU_THRESHOLDS,
    MAX_DETECTIONS,
    match_image,
)

F = npt.NDArray[np.float64]
REPLICATE_CHUNK = 64
# The summary numbers, in the order of pycocotools' ``COCOeval.stats``.
COCO_SUMMARY = (
    "map",
    "map_50",
    "map_75",
    "map_small",
    "map_medium",
    "map_large",
    "mar_1",
    "mar_10",
    "mar_100",
    "mar_small",
    "mar_medium",
    "mar_large",
)
RECALL_POINTS: F = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


@dataclass(frozen=True)
class DetectionImage:
    """One image: its position in the dataset (orders ties), expert boxes and model boxes, as
    [x, y, width, height] in pixels with class indices."""

    order: int
    gt_boxes: F
    gt_classes: npt.NDArray[np.int64]
    dt_boxes: F
    dt_scores: F
    dt_classes: npt.NDArray[np.int64]
    gt_areas: F | None = None  # None: the boxes' areas
    gt_crowd: npt.NDArray[np.bool_] | None = None  # None: no crowd box


@dataclass
class BoxState:
    """Per class, the detections' records (in parts, merged by concatenation) and the number of
    ground-truth boxes that count, per area range."""

    parts: list[list[dict[str, np.ndarray]]]
    n_gt: npt.NDArray[np.int64]
    n_images: int = 0
    # Every image's position, and per class each image's boxes that count per area range (all,
    # small, medium, large): what resampling the images needs.
    orders: list[npt.NDArray[np.int64]] = field(default_factory=list)
    gt_per_image: list[list[tuple[int, ...]]] = field(default_factory=list)


class CocoBoxEvaluation:
    """The accumulator: ``empty``, ``update`` with images, ``merge``, ``finalize``."""

    name = "coco_boxes"

    def __init__(self, labels: tuple[str, ...]):
        self.labels = labels

    def empty(self) -> BoxState:
        k = len(self.labels)
        return BoxState(
            [[] for _ in range(k)],
            np.zeros((k, len(AREA_RANGES)), np.int64),
            gt_per_image=[[] for _ in range(k)],
        )

    def update(self, state: BoxState, images: list[DetectionImage]) -> BoxState:
        for image in images:
            gt_areas = (
                image.gt_areas
                if image.gt_areas is not None
                else image.gt_boxes[:, 2] * image.gt_boxes[:, 3]
            )
            crowd = (
                image.gt_crowd
                if image.gt_crowd is not None
                else np.zeros(len(image.gt_classes), bool)
            )
            for k in range(len(self.labels)):
                g, d = image.gt_classes == k, image.dt_classes == k
                found = match_image(
                    image.dt_boxes[d], image.dt_scores[d], image.gt_boxes[g], gt_areas[g], crowd[g]
                )
                if found is None:
                    continue
                state.n_gt[k] += found.n_gt
                if found.n_gt[0]:
                    state.gt_per_image[k].append((image.order, *(int(n) for n in found.n_gt)))
                n = found.scores.size
                if n:
                    state.parts[k].append(
                        {
                            "order": np.full(n, image.order, np.int64),
                            "rank": np.arange(n, dtype=np.int64),
                            "score": found.scores,
                            "matched": found.matched,
                            "ignored": found.ignored,
                        }
                    )
            state.n_images += 1
        state.orders.append(np.array([image.order for image in images], np.int64))
        return state

    def merge(self, a: BoxState, b: BoxState) -> BoxState:
        return BoxState(
            [pa + pb for pa, pb in zip(a.parts, b.parts, strict=True)],
            a.n_gt + b.n_gt,
            a.n_images + b.n_images,
            a.orders + b.orders,
            [ga + gb for ga, gb in zip(a.gt_per_image, b.gt_per_image, strict=True)],
        )

    def tables(self, state: BoxState) -> tuple[F, F]:
        """pycocotools' ``eval["precision"]`` [T, R, K, A, M] and ``eval["recall"]`` [T, K, A, M]
        (-1 where a class has no box that counts)."""
        t, r, k = IOU_THRESHOLDS.size, RECALL_POINTS.size, len(self.labels)
        a, m = len(AREA_RANGES), len(MAX_DETECTIONS)
        precision = -np.ones((t, r, k, a, m))
        recall = -np.ones((t, k, a, m))
        for c in range(k):
            records = _joined(state.parts[c], t)
            for ai in range(a):
                n_gt = int(state.n_gt[c, ai])
                if n_gt == 0:
                    continue
                for mi, max_det in enumerate(MAX_DETECTIONS):
                    keep = records["rank"] < max_det
                    order = np.lexsort(
                        (records["rank"][keep], records["order"][keep], -records["score"][keep])
                    )
                    matched = records["matched"][ai][:, keep][:, order]
                    ignored = records["ignored"][ai][:, keep][:, order]
                    tps = matched & ~ignored
                    fps = ~matched & ~ignored
                    tp_sum = np.cumsum(tps, axis=1).astype(float)
                    fp_sum = np.cumsum(fps, axis=1).astype(float)
                    for ti, (tp, fp) in enumerate(zip(tp_sum, fp_sum, strict=True)):
                        rc = tp / n_gt
                        pr = tp / (fp + tp + np.spacing(1))
                        recall[ti, c, ai, mi] = rc[-1] if tp.size else 0
                        # The precision envelope: the best precision at any higher recall.
                        pr = np.maximum.accumulate(pr[::-1])[::-1]
                        at = np.searchsorted(rc, RECALL_POINTS, side="left")
                        q = np.zeros(r)
                        inside = at < pr.size
                        q[inside] = pr[at[inside]]
                        precision[ti, :, c, ai, mi] = q
        return precision, recall

    def finalize(self, state: BoxState) -> dict[str, Any]:
        precision, recall = self.tables(state)
        out: dict[str, Any] = {
            "map": _mean(precision[:, :, :, 0, 2]),
            "map_50": _mean(precision[_threshold(0.5), :, :, 0, 2]),
            "map_75": _mean(precision[_threshold(0.75), :, :, 0, 2]),
            "map_small": _mean(precision[:, :, :, 1, 2]),
            "map_medium": _mean(precision[:, :, :, 2, 2]),
            "map_large": _mean(precision[:, :, :, 3, 2]),
            "mar_1": _mean(recall[:, :, 0, 0]),
            "mar_10": _mean(recall[:, :, 0, 1]),
            "mar_100": _mean(recall[:, :, 0, 2]),
            "mar_small": _mean(recall[:, :, 1, 2]),
            "mar_medium": _mean(recall[:, :, 2, 2]),
            "mar_large": _mean(recall[:, :, 3, 2]),
        }
        out["per_class"] = {
            label: {
                "ap": _mean(precision[:, :, c, 0, 2]),
                "ap_50": _mean(precision[_threshold(0.5), :, c, 0, 2]),
                "ar_100": _mean(recall[:, c, 0, 2]),
                "n_boxes": int(state.n_gt[c, 0]),
            }
            for c, label in enumerate(self.labels)
        }
        return out

    def intervals(self, state: BoxState, config: IntervalConfig) -> dict[str, tuple[float, float]]:
        """Percentile bootstrap intervals of every summary number (``map`` ... ``mar_large``) and
        each class's ``ap``, ``ap_50`` and ``ar_100``, resampling the images (the unit the experts
        labelled), as pycocotools would score each resampled dataset: an image drawn twice counts
        its boxes and detections twice. (Where scores tie across images, an image's copies are
        one weighted step here, while pycocotools would interleave them with the other tied
        detections: a replicate's AP may then differ by a little, 0.008 at most in a review's six
        tied cases; the point estimate is exact.) Small samples flatter average precision (the
        precision envelope is a maximum over noisy points): the lower bound of each precision
        number is moved down by the upward bias its half samples and replicates show
        (``small_sample_shift``); the interval still holds the estimate."""
        orders = np.sort(np.concatenate(state.orders)) if state.orders else np.empty(0, np.int64)
        if orders.size == 0:
            return {}
        draws = draw_multinomial(np.ones(orders.size, np.int64), config, salt=self.name)
        replicates = self.replicates(state, orders, draws.astype(np.float64))
        smoothed = self.smoothed_replicates(state, orders, config)
        halves = half_samples(orders.size, max(40, config.n_resamples // 5), config, self.name)
        halved = self.replicates(state, orders, halves)
        point = self.finalize(state)
        estimates = {name: point[name] for name in COCO_SUMMARY} | {
            f"{name}[{label}]": numbers[name]
            for label, numbers in point["per_class"].items()
            for name in ("ap", "ap_50", "ar_100")
        }
        with_class = {label: len(state.gt_per_image[k]) for k, label in enumerate(self.labels)}
        out = {}
        for name, values in replicates.items():
            label = name[name.index("[") + 1 : -1] if "[" in name else None
            if (with_class[label] if label is not None else orders.size) < MIN_IMAGES:
                continue  # no interval: too few images to resample
            interval = percentile_interval(values, config.confidence)
            if name in smoothed:
                interval = hull(interval, percentile_interval(smoothed[name], config.confidence))
            estimate = estimates[name]
            if estimate is None or not np.isfinite(interval).all():
                out[name] = interval
                continue
            # Precision numbers only (the envelope's bias; recall has none to speak of), and
            # the lower bound only: moving both put the upper bound below the truth in 7% of
            # samples (AP75, 60 images), where the plain bootstrap's never was.
            shift = (
                small_sample_shift(estimate, values, halved[name])
                if name.startswith(("map", "ap"))
                else 0.0
            )
            # Never below 0, where no precision is (a review: AP of small boxes [-0.090, 0.516]).
            low = max(0.0, interval[0] - shift)
            out[name] = hull((low, interval[1]), (estimate, estimate))
        return out

    def with_pseudo_images(
        self, state: BoxState, first_order: int, missed_first: bool = True
    ) -> tuple[BoxState, npt.NDArray[np.int64]]:
        """A copy of ``state`` with, per class with expert boxes, half-weight candidates: an
        image whose one box of the class the model misses and one where it finds it first
        (above every detection), the box in the area range most of the class's boxes are in;
        ``missed_first`` False: the found one first (a paired baseline's, against the
        candidate's miss). Returns the state and the pseudo images' orders, from
        ``first_order``."""
        extra = BoxState(
            [list(p) for p in state.parts],
            state.n_gt.copy(),
            state.n_images,
            list(state.orders),
            [list(g) for g in state.gt_per_image],
        )
        top = max(
            (float(part["score"].max()) for parts in state.parts for part in parts), default=0.0
        )
        images: list[DetectionImage] = []
        for k in range(len(self.labels)):
            kept = state.gt_per_image[k]
            if not kept:
                continue
            per_range = np.array(kept, np.int64)[:, 2:].sum(axis=0)  # small, medium, large
            # A side inside the range most of the class's boxes are in (without sizes: medium).
            side = (16.0, 64.0, 256.0)[int(np.argmax(per_range))] if per_range.size else 64.0
            box = np.array([[0.0, 0.0, side, side]])
            label = np.array([k], np.int64)
            none = np.empty((0, 4)), np.empty(0), np.empty(0, np.int64)
            for found in (not missed_first, missed_first):
                dt = (box, np.array([top + 1.0]), label) if found else none
                images.append(DetectionImage(first_order + len(images), box, label, *dt))
        if images:
            extra = self.update(extra, images)
            for k, kept in enumerate(state.gt_per_image):
                if kept and len(kept[0]) < len(extra.gt_per_image[k][-1]):
                    # A state from before the area ranges were kept: (order, all sizes) rows.
                    extra.gt_per_image[k] = [row[: len(kept[0])] for row in extra.gt_per_image[k]]
        return extra, np.array([image.order for image in images], np.int64)

    def smoothed_replicates(
        self, state: BoxState, orders: npt.NDArray[np.int64], config: IntervalConfig
    ) -> dict[str, F]:
        """Replicates whose resamples may also draw the half images of ``with_pseudo_images``:
        ten images a detector got right resampled to mAP [1, 1] (the perfect handful the other
        intervals smooth with half items)."""
        extra, more = self.with_pseudo_images(state, int(orders[-1]) + 1)
        if more.size == 0:
            return {}
        every = np.r_[orders, more]
        parts: dict[str, list[F]] = {}
        # A class's numbers with its own half images; the summary numbers, averages over the
        # classes, with one budget the classes share (``pseudo_shares``).
        for spread in (False, True):
            shares = pseudo_shares(orders.size, more.size, more.size // 2 if spread else 1)
            salt = f"{self.name}:pseudo{':spread' if spread else ''}"
            for draws in multinomial_chunks(
                shares, config, salt, total=orders.size, chunk=REPLICATE_CHUNK
            ):
                found = self.replicates(extra, every, draws.astype(np.float64))
                for name, values in found.items():
                    if ("[" not in name) == spread:
                        parts.setdefault(name, []).append(values)
        return {name: np.concatenate(values) for name, values in parts.items()}

    def replicates(
        self, state: BoxState, orders: npt.NDArray[np.int64], weights: F
    ) -> dict[str, F]:
        """The summary numbers and per-class ``ap[label]``, ``ap_50[label]`` and
        ``ar_100[label]`` of datasets where image ``orders[i]`` counts ``weights[b, i]`` times.

        Precision curves are built for the four area ranges at 100 detections (what the summary
        reads of them); recalls, which need no curve, from each image's true positives."""
        n_b, t, r, k = weights.shape[0], IOU_THRESHOLDS.size, RECALL_POINTS.size, len(self.labels)
        n_a, n_m = len(AREA_RANGES), len(MAX_DETECTIONS)
        precision = -np.ones((n_b, t, r, k, n_a))
        recall = -np.ones((n_b, t, k, n_a, n_m))
        for c in range(k):
            # (order, boxes that count per area range); states written before the area ranges
            # were kept hold only (order, all sizes): their sizes get no interval.
            kept = state.gt_per_image[c]
            width = len(kept[0]) if kept else 1 + n_a
            per_image = np.array(kept, np.int64).reshape(-1, width)
            areas = range(width - 1)
            n_gt = np.zeros((n_b, n_a))
            n_gt[:, : width - 1] = (
                weights[:, np.searchsorted(orders, per_image[:, 0])] @ per_image[:, 1:]
            )
            records = _joined(state.parts[c], t)
            image_all = np.searchsorted(orders, records["order"])
            for ai in areas:
                counted = n_gt[:, ai] > 0
                if not counted.any():
                    continue
                tps_all = records["matched"][ai] & ~records["ignored"][ai]
                for mi, max_det in enumerate(MAX_DETECTIONS):
                    if ai and max_det != MAX_DETECTIONS[-1]:
                        continue  # the summary reads other sizes at 100 detections only
                    keep = records["rank"] < max_det
                    # Each image's true positives per threshold, then weighted per replicate.
                    per_image_tp = np.zeros((orders.size, t))
                    np.add.at(per_image_tp, image_all[keep], tps_all[:, keep].T)
                    with np.errstate(invalid="ignore", divide="ignore"):
                        found = (weights @ per_image_tp) / n_gt[:, ai, None]
                    recall[counted, :, c, ai, mi] = found[counted]
                precision[:, :, :, c, ai] = self._curves(records, orders, weights, n_gt[:, ai], ai)
        out = {
            "map": _means(precision[..., 0]),
            # (An index array and an integer apart would move the replicates off the first axis.)
            "map_50": _means(precision[..., 0][:, _threshold(0.5)]),
            "map_75": _means(precision[..., 0][:, _threshold(0.75)]),
            "map_small": _means(precision[..., 1]),
            "map_medium": _means(precision[..., 2]),
            "map_large": _means(precision[..., 3]),
            "mar_1": _means(recall[..., 0, 0]),
            "mar_10": _means(recall[..., 0, 1]),
            "mar_100": _means(recall[..., 0, 2]),
            "mar_small": _means(recall[..., 1, 2]),
            "mar_medium": _means(recall[..., 2, 2]),
            "mar_large": _means(recall[..., 3, 2]),
        }
        for c, label in enumerate(self.labels):
            out[f"ap[{label}]"] = _means(precision[:, :, :, c, 0])
            out[f"ap_50[{label}]"] = _means(precision[:, :, :, c, 0][:, _threshold(0.5)])
            out[f"ar_100[{label}]"] = _means(recall[:, :, c, 0, 2])
        return out

    @staticmethod
    def _curves(
        records: dict[str, np.ndarray],
        orders: npt.NDArray[np.int64],
        weights: F,
        n_gt: F,
        ai: int,
    ) -> F:
        """pycocotools' interpolated precision [replicates, T, R] of one class and area range at
        100 detections (-1 where a replicate has no box that counts)."""
        n_b, t, r = weights.shape[0], IOU_THRESHOLDS.size, RECALL_POINTS.size
        precision = -np.ones((n_b, t, r))
        keep = records["rank"] < MAX_DETECTIONS[-1]
        order = np.lexsort((records["rank"][keep], records["order"][keep], -records["score"][keep]))
        matched = records["matched"][ai][:, keep][:, order]
        ignored = records["ignored"][ai][:, keep][:, order]
        image_of = np.searchsorted(orders, records["order"][keep][order])
        # A detection ignored at every threshold (outside the area range, or on a crowd box)
        # moves neither count: leaving it out changes no point of the curve.
        counts = ~ignored.all(axis=0)
        matched, ignored, image_of = matched[:, counts], ignored[:, counts], image_of[counts]
        # The curve is read at true positives only: recall rises only there, and a false
        # positive's precision is below the true positive's before it, so the envelope (the best
        # precision at any higher recall) is the same over the true positives alone. What a true
        # positive needs of the false ones is how many came before it.
        steps = []
        for ti in range(t):
            tps = np.flatnonzero(matched[ti] & ~ignored[ti])
            fps = np.flatnonzero(~matched[ti] & ~ignored[ti])
            steps.append((tps, fps, np.searchsorted(fps, tps)))
        # Replicates in chunks, so that the [detections, replicates] arrays stay small; the
        # detections run down the first axis, where cumulative sums are fastest.
        for start in range(0, n_b, REPLICATE_CHUNK):
            rows = np.arange(start, min(start + REPLICATE_CHUNK, n_b))
            rows = rows[n_gt[rows] > 0]
            if rows.size == 0:
                continue
            w = np.ascontiguousarray(weights[rows][:, image_of].T)
            for ti, (tps, fps, fps_before) in enumerate(steps):
                if tps.size == 0:
                    precision[rows, ti] = 0.0
                    continue
                tp = np.cumsum(w[tps], axis=0)
                fp_sum = np.cumsum(w[fps], axis=0)
                fp = np.zeros_like(tp)
                seen = fps_before > 0
                fp[seen] = fp_sum[fps_before[seen] - 1]
                rc = (tp / n_gt[rows]).T.copy()
                pr = tp / (fp + tp + np.spacing(1))
                pr = np.maximum.accumulate(pr[::-1], axis=0)[::-1].T.copy()
                for j, b in enumerate(rows):
                    at = np.searchsorted(rc[j], RECALL_POINTS, side="left")
                    q = np.zeros(r)
                    inside = at < pr.shape[1]
                    q[inside] = pr[j, at[inside]]
                    precision[b, ti] = q
        return precision


def _means(values: F) -> F:
    """``_mean`` of each replicate (first axis); nan where nothing exists."""
    flat = values.reshape(values.shape[0], -1)
    present = flat > -1
    with np.errstate(invalid="ignore"):
        means: F = np.where(present, flat, 0.0).sum(axis=1) / present.sum(axis=1)
    return means


def _threshold(value: float) -> npt.NDArray[np.intp]:
    """The IoU threshold's index, found by equality as pycocotools finds it."""
    index: npt.NDArray[np.intp] = np.where(value == IOU_THRESHOLDS)[0]
    return index


def _mean(values: F) -> float | None:
    """pycocotools' summary: the mean over the entries that exist (None: none does)."""
    present = values[values > -1]
    return float(np.mean(present)) if present.size else None


def _joined(parts: list[dict[str, np.ndarray]], n_t: int) -> dict[str, np.ndarray]:
    if not parts:
        a = len(AREA_RANGES)
        return {
            "order": np.empty(0, np.int64),
            "rank": np.empty(0, np.int64),
            "score": np.empty(0),
            "matched": np.zeros((a, n_t, 0), bool),
            "ignored": np.zeros((a, n_t, 0), bool),
        }
    return {
        name: np.concatenate(
            [p[name] for p in parts], axis=-1 if name in ("matched", "ignored") else 0
        )
        for name in parts[0]
    }
