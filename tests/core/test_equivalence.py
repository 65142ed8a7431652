"""The agreement of two models' answers (export equivalence): the merge laws, and the numbers
against numpy's on the same differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.comparison import PairedBatch
from assay.core.equivalence import EquivalenceAccumulator, equivalence_metrics

LABELS = ("ok", "scratch", "dent")


def paired(seed: int, n: int, spread: float) -> PairedBatch:
    rng = np.random.default_rng(seed)
    base = rng.dirichlet(np.ones(3), n)
    noise = rng.normal(0, spread, (n, 3)) * rng.random((n, 1)) ** 4  # mostly tiny, a few large
    cand = np.clip(base + noise, 1e-6, None)
    cand = cand / cand.sum(axis=1, keepdims=True) if spread else base.copy()
    y = rng.integers(0, 3, n)
    return PairedBatch(
        y, base.argmax(axis=1), cand.argmax(axis=1), base, cand, [f"i{j:05d}" for j in range(n)], ()
    )


def split(batch: PairedBatch, at: int) -> tuple[PairedBatch, PairedBatch]:
    def part(s: slice) -> PairedBatch:
        return PairedBatch(
            batch.y_true[s],
            batch.base_pred[s],
            batch.cand_pred[s],
            batch.base_scores[s],
            batch.cand_scores[s],
            list(batch.item_ids[s]),
            (),
        )

    return part(slice(0, at)), part(slice(at, None))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 400), st.floats(1e-7, 0.5), st.data())
def test_merging_shards_equals_one_pass_and_p99_is_a_tight_upper_bound(
    seed: int, n: int, spread: float, data: st.DataObject
) -> None:
    acc = EquivalenceAccumulator(LABELS, k=5)
    batch = paired(seed, n, spread)
    at = data.draw(st.integers(0, n))
    a, b = split(batch, at)
    whole = acc.finalize(acc.update(acc.empty(), batch), 0.95)
    merged = acc.finalize(acc.merge(acc.update(acc.empty(), a), acc.update(acc.empty(), b)), 0.95)
    sequential = acc.finalize(acc.update(acc.update(acc.empty(), a), b), 0.95)
    assert whole == merged == sequential
    diff = np.abs(batch.cand_scores - batch.base_scores)
    per_item = diff.max(axis=1)
    assert whole["any_class"]["max"] == per_item.max()
    exact = float(np.quantile(per_item, 0.99, method="higher"))
    p99 = whole["any_class"]["p99"]
    assert exact <= p99 <= max(exact * 10 ** (1 / 50), 1e-12)
    for c, label in enumerate(LABELS):
        exact_c = float(np.quantile(diff[:, c], 0.99, method="higher"))
        assert exact_c <= whole["by_class"][label]["p99"] <= max(exact_c * 10 ** (1 / 50), 1e-12)
    flips = int((batch.base_pred != batch.cand_pred).sum())
    assert whole["n_decision_flips"] == flips
    shown = whole["flipped_examples"]
    assert len(shown) == min(5, flips)
    assert [e["confidence"] for e in shown] == sorted(
        (float(per_item[i]) for i in np.flatnonzero(batch.base_pred != batch.cand_pred)),
        reverse=True,
    )[: len(shown)]


def test_identical_answers_are_zero_and_metrics_carry_the_flip_interval() -> None:
    acc = EquivalenceAccumulator(LABELS)
    batch = paired(1, 300, 0.0)
    found = acc.finalize(acc.update(acc.empty(), batch), 0.95)
    assert found["any_class"] == {"max": 0.0, "p99": 0.0}
    metrics = equivalence_metrics(found)
    assert metrics["decision_flips"].value == 0
    assert metrics["flip_rate"].value == 0 and metrics["flip_rate"].ci_high == pytest.approx(
        0.0126, abs=1e-3
    )
    assert metrics["max_abs_score_diff[dent]"].value == 0.0


def test_an_empty_comparison_tells_nothing() -> None:
    acc = EquivalenceAccumulator(LABELS)
    found = acc.finalize(acc.empty(), 0.95)
    metrics = equivalence_metrics(found)
    assert metrics["max_abs_score_diff"].value is None
    assert metrics["flip_rate"].value is None
