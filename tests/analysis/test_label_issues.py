"""Doubtful labels: planted label errors are found among the candidates."""

from __future__ import annotations

import numpy as np

from assay.analysis.label_issues import find_label_issues


def test_planted_label_errors_rank_among_the_candidates() -> None:
    rng = np.random.default_rng(0)
    n, k = 3000, 4
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += 3.5  # a good model: right about 90% of the time
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = truth.copy()
    flipped = rng.choice(n, 60, replace=False)
    labels[flipped] = (truth[flipped] + rng.integers(1, k, 60)) % k
    issues = find_label_issues(labels, probs)
    found = set(issues.indices.tolist())
    recall = len(found & set(flipped.tolist())) / 60
    precision = len(found & set(flipped.tolist())) / max(1, len(found))
    assert recall >= 0.8, recall
    assert precision >= 0.3, precision
    top = issues.indices[:30].tolist()
    assert len(set(top) & set(flipped.tolist())) >= 20  # the most doubtful are mostly planted
    assert issues.label_quality.shape == (n,)
    assert "cleanlab" in issues.method


def test_too_little_data_gives_no_candidates_but_quality_scores() -> None:
    issues = find_label_issues(np.array([0, 1, 0]), np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]]))
    assert issues.indices.size == 0 and issues.label_quality.shape == (3,)


def test_candidates_and_order_match_cleanlabs_own_ranking() -> None:
    """The ranking done here equals cleanlab's return_indices_ranked_by="self_confidence"."""
    from cleanlab.filter import find_label_issues as cl_find

    rng = np.random.default_rng(1)
    n, k = 5000, 3
    truth = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), truth] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = truth.copy()
    flipped = rng.choice(n, 200, replace=False)
    labels[flipped] = (truth[flipped] + 1) % k
    ours = find_label_issues(labels, probs)
    reference = cl_find(labels, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    assert ours.indices.size > 100
    assert sorted(ours.indices.tolist()) == sorted(reference.tolist())
    confidence = probs[reference, labels[reference]]
    assert np.array_equal(probs[ours.indices, labels[ours.indices]], confidence)  # same order
    assert np.array_equal(ours.label_quality, probs[np.arange(n), labels])
