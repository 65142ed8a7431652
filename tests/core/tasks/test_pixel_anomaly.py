"""Pixel AUROC and AUPRO equal the MVTec AD evaluation's formula and scikit-learn's ROC-AUC."""

from __future__ import annotations

from bisect import bisect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.analysis.regions import label_regions
from assay.core.tasks.anomaly.pixels import PixelAnomaly


def mvtec_aupro(maps: list[np.ndarray], masks: list[np.ndarray], limit: float = 0.3) -> float:
    """The published MVTec AD evaluation (compute_pro and trapezoid), restated on whole arrays."""
    from scipy.ndimage import label

    fp, pro, n_ok, n_regions = [], [], 0, 0
    for mask in masks:
        labelled, n = label(mask, structure=np.ones((3, 3), dtype=int))
        n_regions += n
        ok = labelled == 0
        n_ok += int(ok.sum())
        changes = np.zeros(mask.shape)
        for k in range(n):
            region = labelled == k + 1
            changes[region] = 1.0 / region.sum()
        fp.append(ok.ravel().astype(float))
        pro.append(changes.ravel())
    scores = np.concatenate([m.ravel() for m in maps])
    order = np.argsort(scores)[::-1]
    s = scores[order]
    fprs = np.cumsum(np.concatenate(fp)[order]) / n_ok
    pros = np.cumsum(np.concatenate(pro)[order]) / n_regions
    keep = np.append(np.diff(s) != 0, True)
    x = np.concatenate(([0.0], np.clip(fprs[keep], None, 1), [1.0]))
    y = np.concatenate(([0.0], np.clip(pros[keep], None, 1), [1.0]))
    correction = 0.0
    if limit not in x:
        ins = bisect(x.tolist(), limit)
        y_at = y[ins - 1] + (y[ins] - y[ins - 1]) * (limit - x[ins - 1]) / (x[ins] - x[ins - 1])
        correction = 0.5 * (y_at + y[ins - 1]) * (limit - x[ins - 1])
    inside = x <= limit
    x, y = x[inside], y[inside]
    return float((np.sum(0.5 * (y[1:] + y[:-1]) * (x[1:] - x[:-1])) + correction) / limit)


def scans(seed: int, n: int, coarse: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    maps, masks = [], []
    for _ in range(n):
        mask = np.zeros((32, 32), np.uint8)
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.integers(0, 28, 2)
            w, h = rng.integers(1, 9, 2)
            mask[y : y + h, x : x + w] = 255
        score = rng.normal(0, 1, mask.shape) + (mask > 0) * rng.uniform(0.5, 3)
        # Coarse scores have no more precision than the bins (multiples of 1/64): exact there.
        maps.append(np.round(score * 64) / 64 if coarse else score.astype(np.float32))
        masks.append(mask)
    return maps, masks


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 10), st.integers(1, 3))
def test_equal_to_the_mvtec_formula_and_scikit_learn_when_scores_fit_the_bins(
    seed: int, n: int, shards: int
) -> None:
    from sklearn.metrics import roc_auc_score

    maps, masks = scans(seed, n, coarse=True)
    if not any(m.any() for m in masks):
        masks[0][:3, :3] = 255
    metric = PixelAnomaly()
    states = [metric.empty() for _ in range(shards)]
    for i, (score, mask) in enumerate(zip(maps, masks, strict=True)):
        metric.add(states[i % shards], score, label_regions(mask))
    state = states[0]
    for other in states[1:]:
        state = metric.merge(state, other)
    found = metric.finalize(state)
    truth = np.concatenate([m.ravel() > 0 for m in masks])
    pixels = np.concatenate([m.ravel() for m in maps])
    assert found["pixel_auroc"] == pytest.approx(roc_auc_score(truth, pixels), abs=1e-12)
    assert found["aupro"] == pytest.approx(mvtec_aupro(maps, masks), abs=1e-12)


def test_close_to_the_formula_for_any_scores() -> None:
    maps, masks = scans(3, 12, coarse=False)
    metric = PixelAnomaly()
    state = metric.empty()
    for score, mask in zip(maps, masks, strict=True):
        metric.add(state, score, label_regions(mask))
    assert metric.finalize(state)["aupro"] == pytest.approx(mvtec_aupro(maps, masks), abs=2e-3)


def test_every_region_weighs_the_same_and_bad_maps_are_refused() -> None:
    """One large region found and one small region missed: PRO is a half at a false-positive
    rate of 0, though 100 of the 101 defect pixels were found. The next threshold takes every
    pixel (FPR 1, PRO 1), so the curve rises linearly to 0.65 at FPR 0.3: AUPRO
    = (0.5 + 0.65) / 2 = 0.575. Weighted by pixels it would start at 0.99."""
    mask = np.zeros((20, 20), np.uint8)
    mask[:10, :10] = 1  # 100 pixels, scored high
    mask[15, 15] = 1  # 1 pixel, scored as the good ones
    score = np.where(mask > 0, 5.0, 0.0)
    score[15, 15] = 0.0
    metric = PixelAnomaly()
    state = metric.empty()
    metric.add(state, score, label_regions(mask))
    assert state.n_regions == 2
    assert metric.finalize(state)["aupro"] == pytest.approx(0.575)
    with pytest.raises(ValueError, match="differ in shape"):
        metric.add(state, score[:5], label_regions(mask))
    with pytest.raises(ValueError, match="NaN"):
        metric.add(state, np.full((20, 20), np.nan), label_regions(mask))
    assert metric.finalize(metric.empty()) == {"pixel_auroc": None, "aupro": None}
    diagonal = np.eye(4, dtype=np.uint8)
    assert label_regions(diagonal).max() == 1  # 8-connected: a diagonal line is one region
