"""PixelConfusion: semantic segmentation metrics from a mergeable pixel confusion matrix.

Each image's expert mask and model mask (class index per pixel; ``ignore``: pixels the experts
left out) add to a K x K confusion matrix of pixels [expert class, model class]. From it: per
class IoU = TP / (TP + FP + FN) and Dice = 2 TP / (2 TP + FP + FN), mean IoU over the classes
that occur (in the experts' or the model's pixels), and pixel accuracy. Each image's own
per-class TP, FP and FN are kept too (3 K numbers per image): they give the image's IoU, which
the item-level decision compares with a stated bound, and they let the intervals resample
images, the unit the experts labelled, rather than pixels, which are not independent.
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
    percentile_interval,
)

I64 = npt.NDArray[np.int64]
F = npt.NDArray[np.float64]


@dataclass
class PixelState:
    """The summed pixel confusion, and per image (by position in the dataset) its per-class
    [TP, FP, FN] counts, in parts merged by concatenation."""

    confusion: I64
    orders: list[I64] = field(default_factory=list)
    per_image: list[I64] = field(default_factory=list)  # [images, K, 3]


def image_counts(
    expert: npt.NDArray[np.integer[Any]],
    model: npt.NDArray[np.integer[Any]],
    n_classes: int,
    ignore: int | None = 255,
) -> I64:
    """One image's pixel confusion [K, K] (pixels ``ignore`` in the expert mask left out)."""
    if expert.shape != model.shape:
        raise ValueError(f"mask shapes differ: expert {expert.shape}, model {model.shape}")
    if expert.dtype == np.uint8 and model.dtype == np.uint8:
        # One pass: the joint histogram of two bytes, 65,536 cells (4x faster than widening
        # both masks to int64 and checking their ranges first).
        joint = np.bincount(
            ((expert.astype(np.uint16) << 8) | model).ravel(), minlength=1 << 16
        ).reshape(256, 256)
        if ignore is not None and 0 <= ignore < 256:
            joint[ignore] = 0
        if joint[n_classes:].any() or joint[:, n_classes:].any():
            raise ValueError(f"a mask holds a class index outside 0..{n_classes - 1}")
        counts: I64 = joint[:n_classes, :n_classes].astype(np.int64)
        return counts
    e, m = expert.ravel().astype(np.int64), model.ravel().astype(np.int64)
    if ignore is not None:
        keep = e != ignore
        e, m = e[keep], m[keep]
    if e.size and (e.min() < 0 or e.max() >= n_classes or m.min() < 0 or m.max() >= n_classes):
        raise ValueError(f"a mask holds a class index outside 0..{n_classes - 1}")
    counts = np.bincount(e * n_classes + m, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
    return counts


def tp_fp_fn(confusion: I64) -> I64:
    """[..., K, K] -> [..., K, 3]."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    fp = confusion.sum(axis=-2) - tp
    fn = confusion.sum(axis=-1) - tp
    out: I64 = np.stack([tp, fp, fn], axis=-1)
    return out


def iou_of(counts: F | I64) -> F:
    """Per class IoU from [..., K, 3] counts (nan where the class occurs in neither mask)."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        out: F = tp / (tp + fp + fn)
    return out


def dice_of(counts: F | I64) -> F:
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        out: F = 2 * tp / (2 * tp + fp + fn)
    return out


def image_iou(counts: I64) -> float:
    """An image's IoU: the mean over the classes that occur in it (expert's or model's pixels);
    nan for an image with no pixel counted."""
    values = iou_of(counts)
    present = ~np.isnan(values)
    return float(values[present].mean()) if present.any() else float("nan")


def images_holding(per_image: list[I64]) -> I64:
    """Per class, how many images hold it (as the expert's or the model's pixels)."""
    if not per_image:
        return np.zeros(0, np.int64)
    counts = np.concatenate(per_image)  # [images, K, 3]: tp, fp, fn
    holding: I64 = (counts.sum(axis=-1) > 0).sum(axis=0)
    return holding


def enough_images(name: str, n_images: int, holding: I64, labels: tuple[str, ...]) -> bool:
    """Whether the bootstrap of ``name`` (``iou[label]`` for a class) resamples at least
    ``MIN_IMAGES`` images: below, its spread means little (two images right give [1, 1])."""
    if "[" in name:
        label = name[name.index("[") + 1 : -1]
        return label in labels and int(holding[labels.index(label)]) >= MIN_IMAGES
    return n_images >= MIN_IMAGES


class PixelConfusion:
    """The accumulator: ``empty``, ``add`` an image, ``merge``, ``finalize`` (with intervals)."""

    name = "pixel_confusion"

    def __init__(self, labels: tuple[str, ...], ignore: int | None = 255):
        self.labels, self.ignore = labels, ignore

    def empty(self) -> PixelState:
        k = len(self.labels)
        return PixelState(np.zeros((k, k), np.int64))

    def add(self, state: PixelState, order: int, expert: I64, model: I64) -> float:
        """Count one image into ``state`` (in place); returns its IoU."""
        counts = image_counts(expert, model, len(self.labels), self.ignore)
        return image_iou(self.add_counts(state, order, counts))

    def add_counts(self, state: PixelState, order: int, counts: I64) -> I64:
        """Count one image's pixel confusion [K, K] into ``state``; returns its [K, 3]."""
        state.confusion += counts
        per_class = tp_fp_fn(counts)
        state.orders.append(np.array([order], np.int64))
        state.per_image.append(per_class[None])
        return per_class

    def merge(self, a: PixelState, b: PixelState) -> PixelState:
        return PixelState(a.confusion + b.confusion, a.orders + b.orders, a.per_image + b.per_image)

    def finalize(self, state: PixelState, config: IntervalConfig | None = None) -> dict[str, Any]:
        counts = tp_fp_fn(state.confusion)
        iou, dice = iou_of(counts), dice_of(counts)
        present = ~np.isnan(iou)
        total = int(state.confusion.sum())
        out: dict[str, Any] = {
            "mean_iou": float(iou[present].mean()) if present.any() else None,
            "pixel_accuracy": float(np.trace(state.confusion) / total) if total else None,
            "per_class": {
                label: {
                    "iou": None if np.isnan(iou[k]) else float(iou[k]),
                    "dice": None if np.isnan(dice[k]) else float(dice[k]),
                    "n_pixels": int(state.confusion[k].sum()),
                }
                for k, label in enumerate(self.labels)
            },
        }
        if config is not None and state.per_image:
            out["intervals"] = self.intervals(state, config)
        return out

    def intervals(
        self, state: PixelState, config: IntervalConfig
    ) -> dict[str, tuple[float, float]]:
        """Percentile bootstrap intervals of ``mean_iou``, ``pixel_accuracy`` and each class's
        ``iou`` and ``dice``, resampling images."""
        orders = np.sort(np.concatenate(state.orders))
        draws = draw_multinomial(np.ones(orders.size, np.int64), config, salt=self.name)
        replicates = self.replicates(state, orders, draws.astype(np.float64))
        holding = images_holding(state.per_image)
        return {
            name: percentile_interval(values, config.confidence)
            for name, values in replicates.items()
            if enough_images(name, orders.size, holding, self.labels)
        }

    def replicates(self, state: PixelState, orders: I64, weights: F) -> dict[str, F]:
        """The metrics of datasets where image ``orders[i]`` counts ``weights[b, i]`` times."""
        given = np.concatenate(state.orders)
        per_image = np.concatenate(state.per_image)[np.argsort(given, kind="stable")]
        # [resamples, K, 3]: each resample's counts are its images' counts, weighted and summed.
        counts = np.einsum("bi,ikc->bkc", weights, per_image.astype(np.float64))
        iou, dice = iou_of(counts), dice_of(counts)
        present = ~np.isnan(iou)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_iou = np.where(present, iou, 0.0).sum(axis=1) / present.sum(axis=1)
            # Every counted pixel is one class's TP or FN.
            accuracy = counts[..., 0].sum(axis=1) / (counts[..., 0] + counts[..., 2]).sum(axis=1)
        out = {"mean_iou": mean_iou, "pixel_accuracy": accuracy}
        for k, label in enumerate(self.labels):
            out[f"iou[{label}]"] = iou[:, k]
            out[f"dice[{label}]"] = dice[:, k]
        return out
