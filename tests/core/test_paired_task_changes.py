"""Paired changes of a segmentation model's and an anomaly model's own numbers: estimates equal
scikit-learn's on the images both judged, intervals match a plain paired image bootstrap, equal
models are called worse at most at the stated level, and a handful (or two models that agree
everywhere) gives no interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    jaccard_score,
    roc_auc_score,
)

from assay.core.intervals import IntervalConfig
from assay.core.tasks.anomaly.paired import anomaly_changes
from assay.core.tasks.segmentation.boundary import boundary_counts
from assay.core.tasks.segmentation.paired import segmentation_changes
from assay.core.tasks.segmentation.pixel_confusion import image_counts, tp_fp_fn

LABELS = ("background", "spot", "scratch")


def f1_max_reference(y: np.ndarray, s: np.ndarray) -> float:
    """Best F1 over every threshold, with scikit-learn's f1_score at each distinct score."""
    return max(f1_score(y, (s >= t).astype(int)) for t in np.unique(s))


def f1_max_numpy(y: np.ndarray, s: np.ndarray) -> float:
    """The same by sorting (for the bootstrap's thousands of resamples)."""
    order = np.argsort(-s, kind="mergesort")
    tp, fp = np.cumsum(y[order]), np.cumsum(~y[order])
    ends = np.r_[s[order][1:] != s[order][:-1], True]
    return float((2 * tp[ends] / (tp[ends] + fp[ends] + y.sum())).max())


def anomaly_scores(
    rng: np.random.Generator, n: int, cand_sep: float, base_sep: float, rate: float = 0.3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expert classes and two models' raw scores sharing each image's difficulty."""
    y = rng.random(n) < rate
    hard = rng.normal(0, 1, n)
    cand = cand_sep * y + hard + rng.normal(0, 0.7, n)
    base = base_sep * y + hard + rng.normal(0, 0.7, n)
    return y, cand * 10.0, base * 3.0 + 40.0  # raw scores on any scale


def paired_bootstrap(y: np.ndarray, cand: np.ndarray, base: np.ndarray, metric, n: int):
    rng = np.random.default_rng(99)
    out = []
    while len(out) < n:
        i = rng.integers(0, y.size, y.size)
        if y[i].all() or not y[i].any():
            continue
        out.append(metric(y[i], cand[i]) - metric(y[i], base[i]))
    return np.quantile(out, [0.025, 0.975])


def test_anomaly_estimates_equal_scikit_learn_and_intervals_a_paired_bootstrap() -> None:
    rng = np.random.default_rng(3)
    y, cand, base = anomaly_scores(rng, 400, 1.6, 1.0)
    changes = anomaly_changes(y, cand, base, IntervalConfig(0.95, 2000, 0))
    references = {
        "image_auroc": roc_auc_score,
        "image_aupr": average_precision_score,
        "f1_max": f1_max_reference,
    }
    for name, metric in references.items():
        d = changes[name]
        assert d.candidate == pytest.approx(metric(y, cand), abs=1e-12), name
        assert d.baseline == pytest.approx(metric(y, base), abs=1e-12), name
        assert d.ci_low is not None and d.ci_high is not None
        assert d.ci_low < d.delta < d.ci_high
        assert d.n_items == 400
        fast = f1_max_numpy if name == "f1_max" else metric
        assert fast(y, cand) == pytest.approx(metric(y, cand), abs=1e-12)
        low, high = paired_bootstrap(y, cand, base, fast, 600)
        width = high - low
        # The same interval up to resampling noise (and DeLong's normal shape for the AUROC).
        assert d.ci_low == pytest.approx(low, abs=0.2 * width), name
        assert d.ci_high == pytest.approx(high, abs=0.2 * width), name


def test_anomaly_equal_models_are_called_worse_at_most_at_the_stated_level() -> None:
    """Two models drawn alike: 'the candidate is worse' (the interval's top below 0) at most
    2.5% of the time per side, for each number."""
    rng = np.random.default_rng(11)
    worse = {"image_auroc": 0, "image_aupr": 0, "f1_max": 0}
    trials = 200
    for t in range(trials):
        y, cand, base = anomaly_scores(rng, 120, 1.2, 1.2)
        changes = anomaly_changes(y, cand, base, IntervalConfig(0.95, 400, t))
        for name in worse:
            high = changes[name].ci_high
            worse[name] += high is not None and high < 0
    for name, count in worse.items():
        # 2.5% expected; the binomial's 99.9% upper bound at 200 trials is about 6%.
        assert count / trials <= 0.06, (name, count)


def test_anomaly_a_handful_or_two_perfect_models_prove_nothing() -> None:
    config = IntervalConfig(0.95, 500, 0)
    rng = np.random.default_rng(5)
    y = np.r_[np.ones(6, bool), np.zeros(40, bool)]  # six defective images
    changes = anomaly_changes(y, rng.normal(size=46) + 3 * y, rng.normal(size=46) + y, config)
    assert all(d.ci_low is None and d.ci_high is None for d in changes.values())
    # Twenty and twenty, both ranked perfectly: no "no regression of even 0.01" from that.
    y = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    perfect = np.where(y, 10.0, 0.0) + rng.random(40)
    changes = anomaly_changes(y, perfect, perfect * 2.0, config)
    for name, d in changes.items():
        assert d.delta == pytest.approx(0.0, abs=1e-12), name
        assert d.ci_low is None or d.ci_low < -0.01, (name, d.ci_low)


def experts_of(rng: np.random.Generator, n: int, size: int = 16) -> list[np.ndarray]:
    """Expert masks: a square of class 1 or 2 on most images, some pixels 255 (left out)."""
    experts = []
    for _ in range(n):
        e = np.zeros((size, size), np.uint8)
        k = int(rng.integers(0, 3))
        if k:
            x, y = rng.integers(0, size - 6, 2)
            e[y : y + 6, x : x + 6] = k
        e[0, : int(rng.integers(0, 4))] = 255
        experts.append(e)
    return experts


def model_of(rng: np.random.Generator, experts: list[np.ndarray], miss: float) -> list[np.ndarray]:
    """A model's masks: missing about ``miss`` of the defect pixels, adding a few false ones."""
    models = []
    for e in experts:
        m = np.where(e == 255, 0, e).astype(np.uint8)
        m[(rng.random(m.shape) < miss) & (m > 0)] = 0
        m[rng.random(m.shape) < miss / 20] = int(rng.integers(1, 3))
        models.append(m)
    return models


def masks_of(
    rng: np.random.Generator, n: int, miss: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    experts = experts_of(rng, n)
    return experts, model_of(rng, experts, miss)


def counts_of(experts: list[np.ndarray], models: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    pixels = np.stack(
        [tp_fp_fn(image_counts(e, m, 3, 255)) for e, m in zip(experts, models, strict=True)]
    )
    edges = np.stack(
        [boundary_counts(e, m, 3, 1, 255) for e, m in zip(experts, models, strict=True)]
    )
    return pixels, edges


def pooled(experts: list[np.ndarray], models: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    e, m = np.concatenate([x.ravel() for x in experts]), np.concatenate([x.ravel() for x in models])
    keep = e != 255
    return e[keep], m[keep]


def mean_iou(experts: list[np.ndarray], models: list[np.ndarray]) -> float:
    e, m = pooled(experts, models)
    present = np.isin([0, 1, 2], np.r_[e, m])
    return float(jaccard_score(e, m, average=None, labels=[0, 1, 2])[present].mean())


def test_segmentation_estimates_equal_scikit_learn_and_the_interval_a_paired_bootstrap() -> None:
    rng = np.random.default_rng(8)
    n = 200
    experts, good = masks_of(rng, n, 0.1)
    poor = model_of(rng, experts, 0.4)
    changes = segmentation_changes(
        LABELS, 1, counts_of(experts, good), counts_of(experts, poor), IntervalConfig(0.95, 2000, 0)
    )
    for side, models in (("candidate", good), ("baseline", poor)):
        e, m = pooled(experts, models)
        iou = jaccard_score(e, m, average=None, labels=[0, 1, 2])
        dice = f1_score(e, m, average=None, labels=[0, 1, 2])
        assert getattr(changes["mean_iou"], side) == pytest.approx(iou.mean(), abs=1e-12)
        assert getattr(changes["pixel_accuracy"], side) == pytest.approx(
            accuracy_score(e, m), abs=1e-12
        )
        for k, label in enumerate(LABELS):
            assert getattr(changes[f"iou[{label}]"], side) == pytest.approx(iou[k], abs=1e-12)
            assert getattr(changes[f"dice[{label}]"], side) == pytest.approx(dice[k], abs=1e-12)
    d = changes["mean_iou"]
    assert d.delta > 0 and d.ci_low is not None and d.ci_low > 0 and d.n_items == n
    assert changes["boundary_f1"].ci_low is not None
    # A plain paired image bootstrap, pixel by pixel with scikit-learn: the interval holds it
    # (the half images each model misses only widen it: 1.4 times here, on 200 small images).
    boot = np.random.default_rng(1)
    reps = []
    for _ in range(300):
        i = boot.integers(0, n, n)
        reps.append(
            mean_iou([experts[j] for j in i], [good[j] for j in i])
            - mean_iou([experts[j] for j in i], [poor[j] for j in i])
        )
    low, high = np.quantile(reps, [0.025, 0.975])
    width = high - low
    assert d.ci_low <= low + 0.1 * width and d.ci_high >= high - 0.1 * width, (d, low, high)
    assert d.ci_high - d.ci_low <= 2.0 * width, (d, low, high)


def test_segmentation_equal_models_are_called_worse_at_most_at_the_stated_level() -> None:
    rng = np.random.default_rng(21)
    trials, worse = 150, 0
    for t in range(trials):
        experts, a = masks_of(rng, 30, 0.25)
        b = model_of(rng, experts, 0.25)
        changes = segmentation_changes(
            LABELS, 1, counts_of(experts, a), counts_of(experts, b), IntervalConfig(0.95, 300, t)
        )
        high = changes["mean_iou"].ci_high
        worse += high is not None and high < 0
    assert worse / trials <= 0.07, worse


def test_segmentation_a_handful_or_identical_masks_prove_nothing() -> None:
    rng = np.random.default_rng(2)
    experts, good = masks_of(rng, 8, 0.1)
    poor = model_of(rng, experts, 0.5)
    config = IntervalConfig(0.95, 500, 0)
    few = segmentation_changes(
        LABELS, 1, counts_of(experts, good), counts_of(experts, poor), config
    )
    assert few["mean_iou"].delta is not None and few["mean_iou"].ci_low is None
    # Two models drawing the same masks: no change, and an interval around it that narrows as
    # the images grow (a defect either might miss is drawn in half an image each way).
    widths = []
    for n in (40, 400):
        experts, good = masks_of(rng, n, 0.1)
        same = segmentation_changes(
            LABELS, 1, counts_of(experts, good), counts_of(experts, good), config
        )
        d = same["mean_iou"]
        assert d.delta == 0.0 and d.ci_low is not None and d.ci_high is not None
        assert d.ci_low < 0 < d.ci_high
        widths.append(d.ci_high - d.ci_low)
    assert widths[0] > 5 * widths[1], widths
    # Without a defect class in the images there is nothing to draw: no interval.
    blank = [np.zeros((16, 16), np.uint8) for _ in range(20)]
    none = segmentation_changes(LABELS, 1, counts_of(blank, blank), counts_of(blank, blank), config)
    assert none["mean_iou"].delta == 0.0 and not none["mean_iou"].has_interval


def rare_misses(
    rng: np.random.Generator, n: int, lose: float
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Counts of 64 x 64 images with one defect of 100-300 pixels each: the baseline misses a
    tenth of each defect; the candidate misses the same and one stray pixel more, and on a
    ``lose`` share of the images the whole defect."""
    area = rng.integers(100, 300, n)
    lost = rng.random(n) < lose

    def counts(missed: np.ndarray, stray: int) -> tuple[np.ndarray, np.ndarray]:
        background = np.stack([4096 - area - stray, missed, np.full(n, stray)], -1)
        defect = np.stack([area - missed, np.full(n, stray), missed], -1)
        return np.stack([background, defect], 1), np.zeros((n, 2, 4), np.int64)

    tenth = (area * 0.1).astype(np.int64)
    return counts(np.where(lost, area, tenth), 1), counts(tenth, 0)


def test_segmentation_a_candidate_losing_rare_defects_is_not_passed_on_a_few_images() -> None:
    """A candidate that loses the whole defect on one image in twenty (mean IoU 2.6 points
    worse) showed no loss on most samples of ten images, where every resample said "no change":
    60% of them passed "no mean IoU regression of 0.01" (a hostile review). The half images
    each model misses keep them from passing; a candidate only 0.2 points worse passes once
    there are a few hundred images."""
    labels = ("background", "defect")
    rng = np.random.default_rng(0)
    for n in (10, 30, 100):
        passed = 0
        for t in range(100):
            cand, base = rare_misses(rng, n, 0.05)
            low = segmentation_changes(labels, 1, cand, base, IntervalConfig(0.95, 400, t))[
                "mean_iou"
            ].ci_low
            passed += low is not None and low >= -0.01
        assert passed <= 3, (n, passed)
    passed = 0
    for t in range(20):
        cand, base = rare_misses(rng, 400, 0.0)
        low = segmentation_changes(labels, 1, cand, base, IntervalConfig(0.95, 400, t))[
            "mean_iou"
        ].ci_low
        passed += low is not None and low >= -0.01
    assert passed == 20
