"""Segmentation metrics from the pixel confusion equal scikit-learn's on the flattened pixels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.intervals import IntervalConfig
from assay.core.tasks.segmentation.pixel_confusion import PixelConfusion, image_iou

LABELS = ("background", "scratch", "pit")


def masks(seed: int, n: int, size: int = 24) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        expert = np.zeros((size, size), np.int64)
        for _ in range(int(rng.integers(0, 3))):
            x, y, w, h = rng.integers(0, size, 4)
            expert[y : y + h // 2 + 1, x : x + w // 2 + 1] = rng.integers(1, 3)
        model = expert.copy()
        noise = rng.random(expert.shape) < 0.08
        model[noise] = rng.integers(0, 3, int(noise.sum()))
        expert[rng.random(expert.shape) < 0.02] = 255  # pixels the experts left out
        out.append((expert, model))
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12), st.integers(1, 3))
def test_equals_scikit_learn_on_the_pixels(seed: int, n_images: int, shards: int) -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, jaccard_score

    pairs = masks(seed, n_images)
    metric = PixelConfusion(LABELS)
    states = [metric.empty() for _ in range(shards)]
    for i, (expert, model) in enumerate(pairs):
        metric.add(states[i % shards], i, expert, model)
    state = states[0]
    for other in states[1:]:
        state = metric.merge(state, other)
    found = metric.finalize(state)
    e = np.concatenate([x.ravel() for x, _ in pairs])
    m = np.concatenate([y.ravel() for _, y in pairs])
    e, m = e[e != 255], m[e != 255]
    k = list(range(len(LABELS)))
    assert state.confusion.tolist() == confusion_matrix(e, m, labels=k).tolist()
    occurs = np.isin(k, np.concatenate([e, m]))
    iou = jaccard_score(e, m, labels=k, average=None, zero_division=0)
    dice = f1_score(e, m, labels=k, average=None, zero_division=0)
    for j, label in enumerate(LABELS):
        if occurs[j]:
            assert found["per_class"][label]["iou"] == pytest.approx(iou[j], abs=1e-12)
            assert found["per_class"][label]["dice"] == pytest.approx(dice[j], abs=1e-12)
        else:
            assert found["per_class"][label]["iou"] is None
    assert found["mean_iou"] == pytest.approx(iou[occurs].mean(), abs=1e-12)
    assert found["pixel_accuracy"] == pytest.approx(accuracy_score(e, m), abs=1e-12)


def test_an_images_iou_is_the_mean_over_the_classes_in_it() -> None:
    metric = PixelConfusion(LABELS)
    state = metric.empty()
    expert = np.array([[0, 0, 1, 1]])
    model = np.array([[0, 1, 1, 1]])
    # background: 1 / 2; scratch: 2 / 3; pit occurs in neither mask.
    assert metric.add(state, 0, expert, model) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert np.isnan(image_iou(np.zeros((3, 3), np.int64)))


def test_resampled_images_count_as_often_as_drawn_and_intervals_contain_the_estimate() -> None:
    pairs = masks(5, 30)
    metric = PixelConfusion(LABELS)
    state = metric.empty()
    for i, (expert, model) in enumerate(pairs):
        metric.add(state, i, expert, model)
    point = metric.finalize(state)
    weights = np.ones((2, 30))
    weights[1, 4], weights[1, 7] = 3, 0
    drawn = metric.replicates(state, np.arange(30), weights)
    assert drawn["mean_iou"][0] == pytest.approx(point["mean_iou"], abs=1e-12)
    resampled = metric.empty()
    for i, (expert, model) in enumerate([*pairs, pairs[4], pairs[4]]):
        if i != 7:
            metric.add(resampled, i, expert, model)
    assert drawn["mean_iou"][1] == pytest.approx(metric.finalize(resampled)["mean_iou"], abs=1e-12)
    config = IntervalConfig(n_resamples=300, seed=1)
    found = metric.finalize(state, config)["intervals"]
    low, high = found["mean_iou"]
    assert low < point["mean_iou"] < high
    assert metric.finalize(state, config)["intervals"] == found


def test_bad_masks_are_refused_with_the_reason() -> None:
    metric = PixelConfusion(LABELS)
    state = metric.empty()
    with pytest.raises(ValueError, match="shapes differ"):
        metric.add(state, 0, np.zeros((4, 4), np.int64), np.zeros((4, 5), np.int64))
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        metric.add(state, 0, np.zeros((2, 2), np.int64), np.full((2, 2), 7))
    ignored = metric.empty()
    metric.add(ignored, 0, np.full((3, 3), 255), np.zeros((3, 3), np.int64))
    found = metric.finalize(ignored)
    assert found["mean_iou"] is None and found["pixel_accuracy"] is None
