"""SegmentationTask: class scores per pixel in, each image judged against the experts' mask.

The model's mask is the argmax of its [K, H, W] scores; it is judged at the expert mask's size
(class index per pixel in the spec's label order, 255: left out), brought there with
nearest-neighbour when the sizes differ. The other way round (the expert mask shrunk to the
model's) let a coarser model score better: small defects vanished from the count, and a
boundary tolerance of 2 output pixels was 16 image pixels at 8 x 8 (a review). The **item-level decision**: an image's expert class is "defect" when a
pixel belongs to a class other than the background (the spec's ``negative``, else the first
label); it is right when its *defect IoU* (mean IoU over the non-background classes present in
either mask) is at least ``iou_threshold``, or when neither mask has a defect pixel. The image's
score is its highest per-pixel probability of not being background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from assay.core.accumulators import Accumulator, Finalized
from assay.core.batch import ScoredBatch
from assay.core.failures import NO_MASK
from assay.core.intervals import (
    MIN_IMAGES,
    IntervalConfig,
    draw_multinomial,
    hull,
    multinomial_chunks,
    percentile_interval,
    pseudo_shares,
)
from assay.core.metric_value import MetricValue
from assay.core.prepared import PreparedBatch
from assay.core.spec import ModelSpec
from assay.core.tasks.base import GOOD_DEFECT, I64, F, Judged, decision_accumulators, judged_batch
from assay.core.tasks.segmentation.boundary import boundary_counts, boundary_f1
from assay.core.tasks.segmentation.pixel_confusion import (
    PixelConfusion,
    PixelState,
    enough_images,
    image_counts,
    images_holding,
    iou_of,
    tp_fp_fn,
)
from assay.core.tasks.segmentation.pseudo import pseudo_images

ITEM_LABELS = GOOD_DEFECT
IGNORE = 255
# Each judged image's per-class [TP, FP, FN] pixel counts and its boundary counts (K x 3 then
# K x 4 integers): what comparing two runs' numbers on the same images reads, without decoding
# every mask again (``services.paired_tasks``).
PIXEL_COUNTS = "pixel_counts"


@dataclass(frozen=True)
class ModelMasks:
    """A batch's model masks [N, H, W], whether each item's scores were finite, and each
    image's defect score (highest per-pixel probability of not being background)."""

    masks: npt.NDArray[np.integer[Any]]  # uint8 up to 255 classes
    finite: npt.NDArray[np.bool_]
    defect_score: F


def resize_nearest(mask: npt.NDArray[Any], shape: tuple[int, int]) -> npt.NDArray[Any]:
    """``mask`` at ``shape`` by nearest neighbour (pixel centres, as Pillow's NEAREST)."""
    h, w = mask.shape
    if (h, w) == shape:
        return mask
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(np.int64), w - 1)
    out: npt.NDArray[Any] = mask[rows[:, None], cols[None, :]]
    return out


def resize_bilinear(values: npt.NDArray[Any], shape: tuple[int, int]) -> npt.NDArray[np.float64]:
    """``values`` (a map of floats) at ``shape`` by bilinear interpolation between pixel centres
    (edges clamped), as ``torch.nn.functional.interpolate(mode="bilinear")`` and Pillow do when
    enlarging: how anomaly maps are brought to the mask's size (anomalib, MVTec AD's tools)."""
    h, w = values.shape
    if (h, w) == shape:
        return np.asarray(values, np.float64)

    def axis(n_in: int, n_out: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], F]:
        at = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1.0)
        lo = np.floor(at).astype(np.int64)
        return lo, np.minimum(lo + 1, n_in - 1), at - lo

    r0, r1, fr = axis(h, shape[0])
    c0, c1, fc = axis(w, shape[1])
    v = np.asarray(values, np.float64)
    top = v[r0][:, c0] * (1 - fc) + v[r0][:, c1] * fc
    bottom = v[r1][:, c0] * (1 - fc) + v[r1][:, c1] * fc
    out: npt.NDArray[np.float64] = top * (1 - fr)[:, None] + bottom * fr[:, None]
    return out


def defect_iou(per_class: I64, background: int) -> float | None:
    """Mean IoU over the non-background classes present in either mask; None when none is."""
    values = np.delete(iou_of(per_class), background)
    present = ~np.isnan(values)
    return float(values[present].mean()) if present.any() else None


class SegmentationTask:
    name = "segmentation"
    item_labels: tuple[str, ...] = ITEM_LABELS

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.k = spec.n_classes
        self.background = spec.labels.index(spec.negative) if spec.negative else 0
        self.tolerance = spec.boundary_tolerance

    def decode(self, raw: Any, n: int) -> ModelMasks:
        scores = np.asarray(raw["scores"], dtype=np.float32)
        if scores.ndim != 4 or scores.shape[0] != n or scores.shape[1] != self.k:
            raise ValueError(
                f"the model returned class scores of shape {list(scores.shape)} for {n} items; "
                f"expected [{n}, {self.k}, H, W]"
            )
        finite: npt.NDArray[np.bool_] = np.asarray(np.isfinite(scores).all(axis=(1, 2, 3)))
        safe = np.where(np.isfinite(scores), scores, 0.0)
        masks = np.argmax(safe, axis=1).astype(np.uint8 if self.k <= 255 else np.int32)
        if self.spec.output.kind == "logits":
            # 1 - P(background) = 1 - 1 / sum_k exp(l_k - l_bg), stable for large logits.
            shifted = safe - safe[:, self.background : self.background + 1]
            with np.errstate(over="ignore"):
                p_background = 1.0 / np.exp(np.minimum(shifted, 80.0)).sum(axis=1)
        else:
            p_background = safe[:, self.background]
        score = np.clip(1.0 - p_background.reshape(n, -1).min(axis=1, initial=1.0), 0.0, 1.0)
        return ModelMasks(masks, finite, score.astype(np.float64))

    def combine(self, parts: Sequence[ModelMasks | None]) -> ModelMasks:
        shape = next((p.masks.shape[1:] for p in parts if p is not None), (1, 1))
        out = ModelMasks(
            np.zeros((len(parts), *shape), np.uint8 if self.k <= 255 else np.int32),
            np.zeros(len(parts), bool),
            np.zeros(len(parts)),
        )
        for j, p in enumerate(parts):
            if p is not None:
                out.masks[j], out.finite[j], out.defect_score[j] = (
                    p.masks[0],
                    p.finite[0],
                    p.defect_score[0],
                )
        return out

    def judge(
        self,
        prepared: PreparedBatch,
        rows: I64,
        outputs: ModelMasks,
        errors: dict[int, str],
        offset: int,
    ) -> Judged:
        n = prepared.n_items
        expected = prepared.expected if prepared.expected is not None else [None] * n
        predicted = np.full(n, -1, np.int64)
        scores = np.full((n, 2), np.nan)
        labels: list[str | None] = [None] * n
        ious: list[float | None] = [None] * n
        drawn: list[Any] = [None] * n
        judged: list[int] = []
        y_true: list[int] = []
        detail: list[tuple[int, I64, I64]] = []
        for j, i in enumerate(rows.tolist()):
            mask = expected[i]
            if isinstance(mask, np.ndarray):
                labels[i] = ITEM_LABELS[int(((mask != self.background) & (mask != IGNORE)).any())]
            if i in errors:
                continue
            if not outputs.finite[j]:
                errors[i] = "model output is not finite (NaN or infinite class scores)"
                continue
            s = float(outputs.defect_score[j])
            scores[i] = (1.0 - s, s)
            if not isinstance(mask, np.ndarray):
                errors[i] = mask if isinstance(mask, str) else NO_MASK
                continue
            expert = mask
            model = resize_nearest(outputs.masks[j], (int(mask.shape[0]), int(mask.shape[1])))
            if not (expert != IGNORE).any():
                errors[i] = "the expert mask leaves every pixel out (255): nothing to judge"
                continue
            bad = (expert >= self.k) & (expert != IGNORE)
            if bad.any():
                errors[i] = (
                    f"expert mask holds class index {int(expert[bad][0])} outside "
                    f"0..{self.k - 1} (255: left out)"
                )
                continue
            counts = image_counts(expert, model, self.k, IGNORE)
            iou = defect_iou(tp_fp_fn(counts), self.background)
            truth = int(((expert != self.background) & (expert != IGNORE)).any())
            right = iou is None or iou >= self.spec.iou_threshold
            predicted[i] = truth if right else 1 - truth
            ious[i] = iou
            drawn[i] = outputs.masks[j]  # as the model gave it
            judged.append(i)
            y_true.append(truth)
            detail.append(
                (offset + i, counts, boundary_counts(expert, model, self.k, self.tolerance, IGNORE))
            )
        batch, at = judged_batch(prepared, judged, y_true, predicted, scores, detail)
        counted: list[Any] = [None] * n
        for i, (_, pixel, edges) in zip(judged, detail, strict=True):
            counted[i] = np.r_[tp_fp_fn(pixel).ravel(), np.asarray(edges).ravel()].tolist()
        extra = {"iou": ious, "mask": drawn, PIXEL_COUNTS: counted}
        return Judged(batch, at, predicted, scores, errors, labels, extra)

    def accumulators(
        self, intervals: IntervalConfig, auc_mode: Literal["exact", "binned"], n_examples: int
    ) -> list[Accumulator[Any]]:
        return [
            *decision_accumulators(ITEM_LABELS, intervals, n_examples),
            SegmentationMetrics(self.spec.labels, intervals, self.tolerance, self.background),
        ]

    def prediction_fields(self) -> dict[str, str]:
        return {"iou": "float", "mask": "png", PIXEL_COUNTS: "counts"}

    def rule(self) -> str:
        background = self.spec.labels[self.background]
        return (
            f"an image is right when its defect IoU (mean IoU of the classes other than "
            f"{background!r} present in either mask) is >= {self.spec.iou_threshold:g}, or when "
            "neither mask has a defect pixel; the model's mask is judged at the expert mask's "
            "size, resized with nearest-neighbour when the sizes differ"
        )


@dataclass
class SegmentationState:
    pixels: PixelState
    boundary: I64  # [K, 4]
    # Each image's boundary counts [1, K, 4], in the order of ``pixels.per_image``: what
    # resampling the images needs (states checkpointed before they were kept: empty).
    boundary_per_image: list[I64] = field(default_factory=list)


def _bootstrapped(
    value: float | None, cis: dict[str, tuple[float, float]], name: str, resampled: bool
) -> MetricValue:
    """``name``'s value with its image-bootstrap interval; without one (when intervals were
    asked for), a note saying why, which a confident check reads."""
    ci = cis.get(name)
    note = None
    if ci is None and resampled and value is not None:
        what = "images hold this class" if "[" in name else "images"
        note = f"fewer than {MIN_IMAGES} {what}: no interval"
    return MetricValue.of(value, ci, "bootstrap" if ci else None, note=note)


class SegmentationMetrics:
    """Mean IoU, pixel accuracy, per-class IoU and Dice with image-bootstrap intervals, and
    boundary F1 at ``tolerance`` pixels."""

    name = "segmentation"

    def __init__(
        self,
        labels: tuple[str, ...],
        intervals: IntervalConfig,
        tolerance: int,
        background: int = 0,
    ) -> None:
        self.pixels = PixelConfusion(labels, IGNORE)
        self.intervals = intervals
        self.tolerance = tolerance
        self.background = background

    def empty(self) -> SegmentationState:
        return SegmentationState(
            self.pixels.empty(), np.zeros((len(self.pixels.labels), 4), np.int64)
        )

    def update(self, state: SegmentationState, batch: ScoredBatch) -> SegmentationState:
        out = SegmentationState(
            PixelState(
                state.pixels.confusion.copy(),
                list(state.pixels.orders),
                list(state.pixels.per_image),
            ),
            state.boundary.copy(),
            list(state.boundary_per_image),
        )
        for order, counts, edges in batch.detail:
            self.pixels.add_counts(out.pixels, order, counts)
            out.boundary += edges
            out.boundary_per_image.append(np.asarray(edges, np.int64)[None])
        return out

    def merge(self, a: SegmentationState, b: SegmentationState) -> SegmentationState:
        return SegmentationState(
            self.pixels.merge(a.pixels, b.pixels),
            a.boundary + b.boundary,
            a.boundary_per_image + b.boundary_per_image,
        )

    def boundary_intervals(
        self, state: SegmentationState, config: IntervalConfig
    ) -> dict[str, tuple[float, float]]:
        """Percentile bootstrap intervals of ``boundary_f1`` and each class's, resampling the
        images as the pixel metrics do: a resample's counts are its images' counts, weighted."""
        replicates = self.boundary_replicates(state, config)
        holding = images_holding(state.pixels.per_image)
        n_images = sum(len(o) for o in state.pixels.orders)
        return {
            name: percentile_interval(values, config.confidence)
            for name, values in replicates.items()
            if enough_images(name, n_images, holding, self.pixels.labels)
        }

    def boundary_replicates(
        self, state: SegmentationState, config: IntervalConfig, weights: F | None = None
    ) -> dict[str, F]:
        per_image = state.boundary_per_image
        if not per_image or len(per_image) != len(state.pixels.per_image):
            return {}
        given = np.concatenate(state.pixels.orders)
        sort = np.argsort(given, kind="stable")
        counts_per_image = np.concatenate(per_image)[sort].astype(np.float64)
        if weights is None:
            draws = draw_multinomial(np.ones(given.size, np.int64), config, salt=self.name)
            weights = draws.astype(np.float64)
        counts = np.einsum("bi,ikc->bkc", weights, counts_per_image)
        f1 = boundary_f1(counts)  # [resamples, K]
        present = ~np.isnan(f1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(present, f1, 0.0).sum(axis=1) / present.sum(axis=1)
        out = {"boundary_f1": mean}
        for k, label in enumerate(self.pixels.labels):
            out[f"boundary_f1[{label}]"] = f1[:, k]
        return out

    def smoothed_replicates(
        self, state: SegmentationState, config: IntervalConfig, spread: bool = False
    ) -> dict[str, F]:
        """The metrics' replicates with, beside the images, half an image the model misses
        whole and half one it draws right per defect class (``pseudo``): the images' total
        drawn from both. ``spread``: the halves shared by the classes (``pseudo_shares``), for
        the numbers over every class."""
        given = np.concatenate(state.pixels.orders)
        sort = np.argsort(given, kind="stable")
        pixels = np.concatenate(state.pixels.per_image)[sort]
        whole = len(state.boundary_per_image) == len(state.pixels.per_image)
        k = len(self.pixels.labels)
        edges = np.concatenate(state.boundary_per_image)[sort] if whole else np.zeros((0, k, 4))
        (more_pixels, more_edges), _ = pseudo_images(
            pixels, edges if whole else np.zeros((pixels.shape[0], k, 4)), self.background
        )
        n, m = pixels.shape[0], pixels.shape[0] + more_pixels.shape[0]
        if m == n:
            return {}
        orders = np.arange(m, dtype=np.int64)
        smoothed = SegmentationState(
            PixelState(state.pixels.confusion, [orders], [np.r_[pixels, more_pixels]]),
            state.boundary,
            [np.r_[edges, more_edges]] if whole else [],
        )
        shares = pseudo_shares(n, m - n, (m - n) // 2 if spread else 1)
        salt = f"{self.name}:pseudo{':spread' if spread else ''}"
        parts: dict[str, list[F]] = {}
        for draws in multinomial_chunks(shares, config, salt, total=n):
            weights = draws.astype(np.float64)
            found = self.pixels.replicates(smoothed.pixels, orders, weights)
            if whole:
                found |= self.boundary_replicates(smoothed, config, weights)
            for name, values in found.items():
                parts.setdefault(name, []).append(values)
        return {name: np.concatenate(values) for name, values in parts.items()}

    def finalize(self, state: SegmentationState) -> Finalized:
        config = self.intervals if self.intervals.n_resamples else None
        values = self.pixels.finalize(state.pixels, config)
        cis = values.get("intervals", {})
        out = Finalized()
        on = config is not None and bool(state.pixels.per_image)
        edges = self.boundary_intervals(state, self.intervals) if config is not None else {}
        if config is not None and state.pixels.per_image:
            # The hull with the resamples that may hold half a missed (or right) image: ten
            # perfect images resampled to [1, 1] alone. A class's numbers with its own halves;
            # the numbers over every class with one budget shared by the classes.
            own = self.smoothed_replicates(state, config)
            shared = self.smoothed_replicates(state, config, spread=True)
            smoothed = {k: v for k, v in own.items() if "[" in k} | {
                k: v for k, v in shared.items() if "[" not in k
            }
            for name, reps in smoothed.items():
                found = edges if name.startswith("boundary_f1") else cis
                if name in found:
                    found[name] = hull(found[name], percentile_interval(reps, config.confidence))
        for name in ("mean_iou", "pixel_accuracy"):
            out.metrics[name] = _bootstrapped(values[name], cis, name, on)
        f1 = boundary_f1(state.boundary)
        present = ~np.isnan(f1)
        out.metrics["boundary_f1"] = _bootstrapped(
            float(f1[present].mean()) if present.any() else None, edges, "boundary_f1", on
        )
        for k, (label, per) in enumerate(values["per_class"].items()):
            out.per_class[label] = {
                "iou": _bootstrapped(per["iou"], cis, f"iou[{label}]", on),
                "dice": _bootstrapped(per["dice"], cis, f"dice[{label}]", on),
                "boundary_f1": _bootstrapped(
                    None if np.isnan(f1[k]) else float(f1[k]), edges, f"boundary_f1[{label}]", on
                ),
            }
        out.extras["segmentation"] = {
            "pixel_confusion": {
                "labels": list(self.pixels.labels),
                "matrix": state.pixels.confusion.tolist(),
            },
            "n_pixels": {label: per["n_pixels"] for label, per in values["per_class"].items()},
            "boundary_tolerance_px": self.tolerance,
            "ignore_index": IGNORE,
        }
        return out
