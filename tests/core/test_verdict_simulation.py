"""The statistics are honest: simulated validations where the truth is known.

Each simulation draws expert labels and the predictions of a baseline and a candidate with known
accuracies, builds the joint table, and runs the same evidence and verdict code as a real run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from assay.core.comparison import OVERALL
from assay.core.evidence import build_evidence, slice_metrics
from assay.core.intervals import IntervalConfig
from assay.core.policy import default_policy
from assay.core.verdict import evaluate_policy

K = 3
LABELS = ("a", "b", "c")
SIMULATIONS = 1000
ALPHA = 0.05


def simulate(
    rng: np.random.Generator, n: int, acc_base: float, acc_cand: float, agreement: float
) -> np.ndarray:
    """Joint counts (expert x baseline x candidate) for n items.

    Each model is right with its own probability; with probability ``agreement`` the candidate's
    correctness copies the baseline's (when the accuracies allow it), as for retrained models.
    """
    y = rng.integers(0, K, n)
    base_right = rng.random(n) < acc_base
    own = rng.random(n) < acc_cand
    if acc_base == acc_cand:
        cand_right = np.where(rng.random(n) < agreement, base_right, own)
    else:
        cand_right = own
    wrong = (y + rng.integers(1, K, n)) % K
    base = np.where(base_right, y, wrong)
    cand = np.where(cand_right, y, (y + rng.integers(1, K, n)) % K)
    return np.bincount((y * K + base) * K + cand, minlength=K**3).reshape(K, K, K)


def verdict_of(counts: np.ndarray, config: IntervalConfig) -> tuple[str, float, float]:
    candidate = slice_metrics(counts.sum(axis=1), LABELS, None, config, OVERALL)
    ev = build_evidence(LABELS, None, {OVERALL: counts}, candidate, config, has_baseline=True)
    verdict = evaluate_policy(default_policy(True), ev)
    d = ev.deltas[OVERALL]["accuracy"]
    assert d.ci_low is not None and d.ci_high is not None
    return verdict.status, d.ci_low, d.ci_high


@pytest.mark.parametrize(("n", "agreement"), [(500, 0.5), (4000, 0.8)])
def test_default_policy_fails_at_most_alpha_under_a_true_null(n: int, agreement: float) -> None:
    rng = np.random.default_rng(n)
    fails = 0
    for i in range(SIMULATIONS):
        status, _, _ = verdict_of(
            simulate(rng, n, 0.85, 0.85, agreement), IntervalConfig(n_resamples=500, seed=i)
        )
        fails += status == "fail"
    rate = fails / SIMULATIONS
    assert rate <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / SIMULATIONS), rate


@pytest.mark.parametrize(("acc_base", "acc_cand"), [(0.85, 0.85), (0.86, 0.83)])
def test_95_percent_intervals_cover_the_true_delta_93_to_97_percent_of_the_time(
    acc_base: float, acc_cand: float
) -> None:
    rng = np.random.default_rng(7)
    true_delta = acc_cand - acc_base
    covered = 0
    for i in range(SIMULATIONS):
        _, low, high = verdict_of(
            simulate(rng, 2000, acc_base, acc_cand, 0.7), IntervalConfig(n_resamples=500, seed=i)
        )
        covered += low <= true_delta <= high
    assert 0.93 <= covered / SIMULATIONS <= 0.97, covered / SIMULATIONS


def test_a_clearly_weaker_candidate_fails_and_an_identical_one_passes() -> None:
    rng = np.random.default_rng(1)
    weaker = simulate(rng, 5000, 0.90, 0.80, 0.0)
    assert verdict_of(weaker, IntervalConfig())[0] == "fail"
    y = rng.integers(0, K, 5000)
    pred = np.where(rng.random(5000) < 0.9, y, (y + 1) % K)
    same = np.bincount((y * K + pred) * K + pred, minlength=K**3).reshape(K, K, K)
    status, low, high = verdict_of(same, IntervalConfig())
    # Not [0, 0]: the pseudo-discordance lets the bootstrap see what 5,000 items cannot rule out.
    assert status == "pass" and -0.002 <= low <= 0.0 <= high <= 0.002, (low, high)
