"""Paired comparison state: ledger arithmetic, merge laws, deltas against a direct computation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.comparison import (
    OVERALL,
    JointCountsAccumulator,
    PairedBatch,
    confusion_metrics,
    ledger,
    ledger_by_class,
    paired_deltas,
)
from assay.core.intervals import IntervalConfig

LABELS = ("ok", "lump", "void")
CAMERA = {"camera": ((("camera", "1"),), (("camera", "2"),), (("camera", "3"),))}


def batch(seed: int, n: int) -> PairedBatch:
    rng = np.random.default_rng(seed)
    y, b, c = (rng.integers(0, 3, n) for _ in range(3))
    s = np.full((n, 3), 1 / 3)
    cams = rng.integers(0, 3, n).astype(np.int32)
    return PairedBatch(y, b, c, s, s, slice_codes={"camera": cams})


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 200))
def test_ledger_matches_a_direct_count_and_classes_sum_to_the_whole(seed: int, n: int) -> None:
    acc = JointCountsAccumulator(LABELS, CAMERA)
    b = batch(seed, n)
    counts = acc.update(acc.empty(), b).counts[OVERALL]
    led = ledger(counts)
    base_ok, cand_ok = b.base_pred == b.y_true, b.cand_pred == b.y_true
    assert led["n_fixed"] == int((~base_ok & cand_ok).sum())
    assert led["n_broken"] == int((base_ok & ~cand_ok).sum())
    assert led["n_both_right"] == int((base_ok & cand_ok).sum())
    assert led["n_both_wrong"] == int((~base_ok & ~cand_ok).sum())
    by_class = ledger_by_class(counts, LABELS)
    for key in led:
        assert sum(v[key] for v in by_class.values()) == led[key]
    for k, label in enumerate(LABELS):
        mine = b.y_true == k
        assert by_class[label]["n_broken"] == int((base_ok & ~cand_ok & mine).sum())


@settings(max_examples=30, deadline=None)
@given(seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=5))
def test_joint_counts_merge_equals_one_pass_overall_and_per_slice(seeds: list[int]) -> None:
    acc = JointCountsAccumulator(LABELS, CAMERA)
    parts = [batch(s, 50) for s in seeds]
    merged = acc.empty()
    for p in parts:
        merged = acc.merge(merged, acc.update(acc.empty(), p))
    whole = PairedBatch(
        np.concatenate([p.y_true for p in parts]),
        np.concatenate([p.base_pred for p in parts]),
        np.concatenate([p.cand_pred for p in parts]),
        np.concatenate([p.base_scores for p in parts]),
        np.concatenate([p.cand_scores for p in parts]),
        slice_codes={"camera": np.concatenate([p.slice_codes["camera"] for p in parts])},
    )
    one = acc.update(acc.empty(), whole)
    assert merged.counts.keys() == one.counts.keys()
    for key in one.counts:
        np.testing.assert_array_equal(merged.counts[key], one.counts[key])


def test_deltas_equal_the_difference_of_the_two_models_metrics() -> None:
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    b = batch(3, 2000)
    acc = JointCountsAccumulator(LABELS)
    counts = acc.update(acc.empty(), b).counts[OVERALL]
    deltas = paired_deltas(
        counts, confusion_metrics(LABELS, 0), IntervalConfig(n_resamples=300), OVERALL
    )
    expect = accuracy_score(b.y_true, b.cand_pred) - accuracy_score(b.y_true, b.base_pred)
    assert abs(deltas["accuracy"].delta - expect) < 1e-12  # type: ignore[operator]
    expect = f1_score(b.y_true, b.cand_pred, average="macro") - f1_score(
        b.y_true, b.base_pred, average="macro"
    )
    assert abs(deltas["macro_f1"].delta - expect) < 1e-12  # type: ignore[operator]
    expect = recall_score(b.y_true, b.cand_pred, labels=[2], average="macro") - recall_score(
        b.y_true, b.base_pred, labels=[2], average="macro"
    )
    assert abs(deltas["recall[void]"].delta - expect) < 1e-12  # type: ignore[operator]
    d = deltas["accuracy"]
    assert d.ci_low is not None and d.ci_high is not None and d.ci_low <= d.delta <= d.ci_high  # type: ignore[operator]


def test_slices_of_a_numeric_column_sort_by_number_not_text() -> None:
    """Quantile bins were listed as text: '[113.3, 200)' before '[34.34, 113.3)'."""
    from assay.core.slicing import slice_order

    keys = [
        (("speed", ">= 200"),),
        (("speed", "[113.3, 200)"),),
        (("camera", "10"),),
        (("speed", "< 34.34"),),
        (("camera", "2"),),
        (("speed", "[34.34, 113.3)"),),
        (("line", "L2"),),
        (("line", "L10"),),
        (("speed", "missing"),),
    ]
    assert sorted(keys, key=slice_order) == [
        (("camera", "2"),),
        (("camera", "10"),),
        (("line", "L10"),),
        (("line", "L2"),),
        (("speed", "< 34.34"),),
        (("speed", "[34.34, 113.3)"),),
        (("speed", "[113.3, 200)"),),
        (("speed", ">= 200"),),
        (("speed", "missing"),),
    ]
