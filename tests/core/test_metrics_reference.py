"""Every metric equals scikit-learn's on seeded inputs: binary, multiclass, imbalanced, with ties."""

from __future__ import annotations

import numpy as np
import pytest

from assay.core.accumulators import Finalized, classification_accumulators
from assay.core.batch import make_batch
from assay.core.intervals import IntervalConfig
from assay.core.results import ArtifactRef, ValidationResult
from tests.reference import assert_matches_sklearn, sklearn_metrics


def run_accumulators(
    y: np.ndarray,
    scores: np.ndarray,
    labels: tuple[str, ...],
    positive: int | None,
    mode: str = "exact",
    shards: int = 1,
) -> dict:
    accs = classification_accumulators(labels, IntervalConfig(n_resamples=200), positive, mode)  # type: ignore[arg-type]
    states = []
    for part in np.array_split(np.arange(len(y)), shards):
        b = make_batch(y[part], scores[part])
        states.append([a.update(a.empty(), b) for a in accs])
    merged = states[0]
    for s in states[1:]:
        merged = [a.merge(x, z) for a, x, z in zip(accs, merged, s, strict=True)]
    report = Finalized()
    for a, s in zip(accs, merged, strict=True):
        report.update(a.finalize(s))
    result = ValidationResult(
        "r",
        ArtifactRef("m", "v", 1),
        ArtifactRef("d", "v", 1),
        labels,
        len(y),
        0,
        report.metrics,
        report.per_class,
        report.extras["confusion_matrix"],
    )
    return result.to_dict()


def scores_for(
    y: np.ndarray, k: int, rng: np.random.Generator, skill: float, decimals: int | None
) -> np.ndarray:
    raw = rng.dirichlet(np.ones(k), len(y))
    raw[np.arange(len(y)), y] += skill * rng.random(len(y))
    s = raw / raw.sum(axis=1, keepdims=True)
    if decimals is not None:  # ties, as from quantised model outputs
        s = np.round(s, decimals)
        s[:, -1] = 1.0 - s[:, :-1].sum(axis=1)
        s = np.clip(s, 0, 1)
    return s


@pytest.mark.parametrize(
    ("k", "n", "weights", "decimals", "shards"),
    [
        (2, 5000, [0.93, 0.07], None, 1),
        (2, 3000, [0.5, 0.5], 2, 7),
        (6, 4000, None, None, 3),
        (6, 2500, [0.5, 0.2, 0.1, 0.1, 0.05, 0.05], 3, 11),
        (3, 400, [0.8, 0.15, 0.05], 1, 2),
    ],
)
def test_metrics_equal_scikit_learn(
    k: int, n: int, weights: list[float] | None, decimals: int | None, shards: int
) -> None:
    rng = np.random.default_rng(k * 1000 + n)
    y = rng.choice(k, size=n, p=weights)
    scores = scores_for(y, k, rng, skill=1.2, decimals=decimals)
    labels = tuple(f"c{i}" for i in range(k))
    positive = 1 if k == 2 else None
    result = run_accumulators(y, scores, labels, positive, shards=shards)
    reference = sklearn_metrics(y, scores, scores.argmax(axis=1), k, positive)
    assert_matches_sklearn(result, reference, list(labels))


def test_class_never_predicted_has_undefined_precision_and_counts_as_zero_in_macro() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    scores = np.array(
        [[0.9, 0.1, 0.0], [0.8, 0.2, 0], [0.2, 0.8, 0], [0.6, 0.4, 0], [0.5, 0.5, 0], [0.1, 0.9, 0]]
    )
    result = run_accumulators(y, scores, ("a", "b", "c"), None)
    assert result["metrics"]["per_class"]["c"]["precision"]["value"] is None
    assert "no item was predicted" in result["metrics"]["per_class"]["c"]["precision"]["note"]
    reference = sklearn_metrics(y, scores, scores.argmax(axis=1), 3, None)
    assert result["metrics"]["macro_precision"]["value"] == pytest.approx(
        reference["macro_precision"], abs=1e-12
    )


def test_binned_auc_is_close_to_exact() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 20000)
    scores = scores_for(y, 2, rng, 0.8, None)
    exact = run_accumulators(y, scores, ("ok", "defect"), 1)["metrics"]["roc_auc"]["value"]
    binned = run_accumulators(y, scores, ("ok", "defect"), 1, mode="binned")["metrics"]["roc_auc"][
        "value"
    ]
    assert abs(exact - binned) < 1e-3


def test_intervals_contain_the_point_estimate_and_are_reproducible() -> None:
    rng = np.random.default_rng(9)
    y = rng.integers(0, 4, 800)
    scores = scores_for(y, 4, rng, 1.0, None)
    first = run_accumulators(y, scores, tuple("abcd"), None)
    second = run_accumulators(y, scores, tuple("abcd"), None, shards=5)
    for key, m in first["metrics"].items():
        if key == "per_class":
            continue
        assert m["ci_low"] <= m["value"] <= m["ci_high"], key
        assert second["metrics"][key]["ci_low"] == pytest.approx(m["ci_low"], rel=1e-9), key


def test_log_loss_interval_keeps_a_heavy_tail_like_an_item_bootstrap() -> None:
    """567 items, one of them given probability 0 for its true class (loss 36): the bins were
    merged into groups of equal counts, averaging that loss with its neighbours, and the upper
    bound came out at 0.478 where a plain bootstrap over the items says 0.52. Groups now also
    cut by equal shares of the loss sum, so the tail keeps its own groups."""
    from assay.core.accumulators.losses import MeanLossAccumulator, log_loss_per_item
    from assay.core.batch import ScoredBatch
    from assay.core.intervals import IntervalConfig

    rng = np.random.default_rng(11)
    n = 567
    p_true = 1 - 10 ** rng.uniform(-10, -0.05, n)  # losses over ten decades: >256 bins used
    p_true[7] = 0.0
    y = rng.integers(0, 2, n)
    scores = np.empty((n, 2))
    scores[np.arange(n), y] = p_true
    scores[np.arange(n), 1 - y] = 1 - p_true
    batch = ScoredBatch(y, np.argmax(scores, axis=1), scores)
    acc = MeanLossAccumulator("log_loss", log_loss_per_item, IntervalConfig(0.95, 4000, 0))
    got = acc.finalize(acc.update(acc.empty(), batch)).metrics["log_loss"]
    losses = log_loss_per_item(batch)
    reps = losses[rng.integers(0, n, (20000, n))].mean(axis=1)
    low, high = np.quantile(reps, [0.025, 0.975])
    assert got.value == pytest.approx(losses.mean())
    assert got.ci_high == pytest.approx(high, abs=0.012)
    assert got.ci_low == pytest.approx(low, abs=0.012)
