"""The merge laws for the task accumulators (COCO boxes, object confusion, segmentation,
anomaly): merging with the empty state changes nothing, merging is associative, and any split
of the images into shards gives the one-pass result."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.batch import ScoredBatch
from assay.core.intervals import IntervalConfig
from assay.core.tasks.anomaly.task import AnomalyMetrics
from assay.core.tasks.detection.mean_ap import DetectionImage
from assay.core.tasks.detection.task import (
    BoxMetrics,
    ObjectConfusionAccumulator,
    ScoreRange,
    TideAccumulator,
)
from assay.core.tasks.segmentation.boundary import boundary_counts
from assay.core.tasks.segmentation.pixel_confusion import image_counts
from assay.core.tasks.segmentation.task import SegmentationMetrics

CONFIG = IntervalConfig(n_resamples=50)
LABELS = ("a", "b")


def detection_detail(rng: np.random.Generator, order: int) -> DetectionImage:
    n_gt, n_dt = int(rng.integers(0, 4)), int(rng.integers(0, 5))
    gt = np.c_[rng.uniform(0, 50, (n_gt, 2)), rng.uniform(5, 30, (n_gt, 2))]
    dt = np.c_[rng.uniform(0, 50, (n_dt, 2)), rng.uniform(5, 30, (n_dt, 2))]
    if n_gt and n_dt:
        dt[: min(n_gt, n_dt)] = gt[: min(n_gt, n_dt)] + rng.normal(0, 2, (min(n_gt, n_dt), 4))
        dt[:, 2:] = np.abs(dt[:, 2:]) + 1
    return DetectionImage(
        order,
        gt,
        rng.integers(0, 2, n_gt),
        dt,
        rng.integers(0, 5, n_dt) / 4.0,  # coarse scores: ties
        rng.integers(0, 2, n_dt),
    )


def segmentation_detail(rng: np.random.Generator, order: int) -> tuple[int, Any, Any]:
    expert = (rng.random((12, 12)) < 0.3).astype(np.int64)
    model = (rng.random((12, 12)) < 0.3).astype(np.int64)
    expert[0, 0] = 255  # left out
    return order, image_counts(expert, model, 2), boundary_counts(expert, model, 2, 1)


def anomaly_detail(rng: np.random.Generator, order: int) -> tuple[int, float, Any]:
    regions = np.zeros((8, 8), np.int64)
    if rng.random() < 0.5:
        regions[2:5, 2:5] = 1
    amap = rng.integers(0, 6, (8, 8)).astype(np.float32) / 5
    return order, float(amap.max()), (regions, amap)


KINDS = {
    "coco_boxes": (lambda: BoxMetrics(LABELS, CONFIG), detection_detail),
    "object_confusion": (lambda: ObjectConfusionAccumulator(LABELS, 0.5, 0.5), detection_detail),
    "tide": (lambda: TideAccumulator(LABELS), detection_detail),
    "score_range": (lambda: ScoreRange(), detection_detail),
    "segmentation": (lambda: SegmentationMetrics(("bg", "spot"), CONFIG, 1), segmentation_detail),
    "anomaly": (lambda: AnomalyMetrics(CONFIG, 0.5), anomaly_detail),
}


def make_batches(kind: str, seed: int, sizes: list[int]) -> list[ScoredBatch]:
    rng = np.random.default_rng(seed)
    detail_of = KINDS[kind][1]
    out, order = [], 0
    for n in sizes:
        details = [detail_of(rng, order + i) for i in range(n)]
        order += n
        y = rng.integers(0, 2, n)
        if kind == "anomaly":  # anomalous images: the ones with a region
            y = np.array([int(d[2][0].any()) for d in details], np.int64)
        s = rng.random(n)
        out.append(ScoredBatch(y, y.copy(), np.c_[1 - s, s], detail=details))
    return out


def whole(batches: list[ScoredBatch]) -> ScoredBatch:
    return ScoredBatch(
        np.concatenate([b.y_true for b in batches]),
        np.concatenate([b.y_pred for b in batches]),
        np.concatenate([b.scores for b in batches]).reshape(-1, 2),
        detail=[d for b in batches for d in b.detail],
    )


def same(acc: Any, a: Any, b: Any) -> None:
    fa, fb = acc.finalize(a), acc.finalize(b)
    assert fa.metrics.keys() == fb.metrics.keys()
    for key in fa.metrics:
        for x, y in (
            (fa.metrics[key].value, fb.metrics[key].value),
            (fa.metrics[key].ci_low, fb.metrics[key].ci_low),
        ):
            assert (x is None) == (y is None), key
            if x is not None and y is not None:
                assert x == pytest.approx(y, rel=1e-9, abs=1e-12), key
    for label in fa.per_class:
        for key, v in fa.per_class[label].items():
            w = fb.per_class[label][key]
            assert (v.value is None) == (w.value is None)
            if v.value is not None and w.value is not None:
                assert v.value == pytest.approx(w.value, rel=1e-9, abs=1e-12)
    assert close(fa.extras, fb.extras)


def close(a: Any, b: Any) -> bool:
    """Equal, floats to a relative 1e-9 (sums of floats are associative only up to rounding)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(close, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return bool(a == pytest.approx(b, rel=1e-9, abs=1e-12))
    return bool(a == b)


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), sizes=st.lists(st.integers(0, 6), min_size=1, max_size=4))
def test_shards_merge_to_the_one_pass_result(kind: str, seed: int, sizes: list[int]) -> None:
    acc = KINDS[kind][0]()
    batches = make_batches(kind, seed, sizes)
    one = acc.update(acc.empty(), whole(batches))
    states = [acc.update(acc.empty(), b) for b in batches]
    merged = states[0]
    for s in states[1:]:
        merged = acc.merge(merged, s)
    same(acc, merged, one)
    # Updating one state batch by batch is the same as well.
    running = acc.empty()
    for b in batches:
        running = acc.update(running, b)
    same(acc, running, one)


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_empty_is_the_identity_and_merge_is_associative(kind: str, seed: int) -> None:
    acc = KINDS[kind][0]()
    a, b, c = (acc.update(acc.empty(), x) for x in make_batches(kind, seed, [3, 4, 2]))
    same(acc, acc.merge(acc.empty(), a), a)
    same(acc, acc.merge(a, acc.empty()), a)
    same(acc, acc.merge(acc.merge(a, b), c), acc.merge(a, acc.merge(b, c)))
