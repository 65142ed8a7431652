"""The confidence sequence by simulation: however often it is looked at, it excludes the true
difference in at most alpha of the runs, where an interval recomputed at every look does far more
often; and a candidate exactly at the margin is accepted in at most alpha of the runs."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from assay.core.sequential import confidence_sequence, decide, first_decision

ALPHA = 0.05
LOOKS = 2000
SIMS = 300


def _pairs(rng: np.random.Generator, n: int, fixed: float, broken: float) -> np.ndarray:
    """Paired differences: +1 fixed (baseline wrong, candidate right), -1 broken, else 0."""
    u = rng.uniform(size=n)
    return np.where(u < fixed, 1.0, np.where(u < fixed + broken, -1.0, 0.0))


def test_it_excludes_the_truth_in_at_most_alpha_of_runs_however_often_looked_at() -> None:
    rng = np.random.default_rng(0)
    fixed, broken = 0.06, 0.04
    truth = fixed - broken
    z = NormalDist().inv_cdf(1 - ALPHA / 2)
    ever_wrong = naive_wrong = 0
    for _ in range(SIMS):
        d = _pairs(rng, LOOKS, fixed, broken)
        seq = confidence_sequence(d, ALPHA)
        ever_wrong += bool(((seq.lower > truth) | (seq.upper < truth)).any())
        # The naive way: a normal interval recomputed after each new label (from 30 on).
        t = np.arange(1, LOOKS + 1)
        mean = np.cumsum(d) / t
        sd = np.sqrt(np.maximum(np.cumsum(d * d) / t - mean**2, 1e-12))
        half = z * sd / np.sqrt(t)
        naive_wrong += bool((np.abs(mean - truth) > half)[29:].any())
    # Binomial(300, 0.05): P(>= 24) < 0.01.
    assert ever_wrong / SIMS <= 0.08, ever_wrong
    assert naive_wrong / SIMS > 0.2, naive_wrong  # why a fixed-sample interval cannot be reused


def test_a_candidate_at_the_margin_is_accepted_in_at_most_alpha_of_runs() -> None:
    rng = np.random.default_rng(1)
    margin = 0.02
    accepted = 0
    for _ in range(SIMS):
        d = _pairs(rng, LOOKS, 0.03, 0.03 + margin)  # exactly margin worse
        decision, _ = first_decision(confidence_sequence(d, ALPHA), margin)
        accepted += decision == "accept"
    assert accepted / SIMS <= 0.08, accepted


def test_a_clearly_better_candidate_is_accepted_early() -> None:
    rng = np.random.default_rng(2)
    d = _pairs(rng, 5000, 0.08, 0.01)
    decision, at = first_decision(confidence_sequence(d, ALPHA), 0.01)
    assert decision == "accept" and at is not None and at < 1500


def test_bounds_nest_and_bad_input_is_refused() -> None:
    seq = confidence_sequence(_pairs(np.random.default_rng(3), 500, 0.1, 0.1))
    assert (np.diff(seq.lower) >= 0).all() and (np.diff(seq.upper) <= 0).all()
    assert (seq.lower <= seq.upper).all()
    assert decide(0.0, 0.1, 0.01) == "accept" and decide(-0.2, -0.05, 0.01) == "reject"
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        confidence_sequence([2.0])


def test_an_order_that_follows_the_outcome_gives_no_decision() -> None:
    """From a review: 1,500 good items first (the candidate as good as the baseline on them),
    then 500 defects of which it breaks 100, 0.05 worse in all. The sequence, which covers the
    items seen so far, accepted after 1,476 items; its bounds then crossed ([-0.010, -0.023]).
    Crossed bounds are evidence the order follows the outcomes: no decision stands."""
    d = np.r_[np.zeros(1500), -np.ones(100), np.zeros(400)]
    seq = confidence_sequence(d, ALPHA)
    assert first_decision(seq, 0.01)[0] == "inconsistent"
    # The same items in an order unrelated to their outcome: rejected, as it should be.
    shuffled = np.random.default_rng(4).permutation(d)
    assert first_decision(confidence_sequence(shuffled, ALPHA), 0.01)[0] == "reject"


def test_bounds_that_leave_the_mean_behind_give_no_decision() -> None:
    """From a review: the candidate wins a little early and loses late (0.066 worse in all);
    the running intersection narrowed to a band that never crossed but held none of what was
    measured, and the candidate was accepted."""
    rng = np.random.default_rng(13)

    def segment(n: int, fixed: float, broken: float) -> np.ndarray:
        u = rng.uniform(size=n)
        return np.where(u < fixed, 1.0, np.where(u < fixed + broken, -1.0, 0.0))

    seq = confidence_sequence(np.r_[segment(1050, 0.03, 0.015), segment(950, 0.04, 0.2)], ALPHA)
    assert seq.mean[-1] < -0.05 and (seq.lower <= seq.upper).all()  # never crossed
    assert (seq.lower > -0.01).any()  # an accept was reached on the way
    assert first_decision(seq, 0.01)[0] == "inconsistent"


@pytest.mark.parametrize(("fixed", "broken"), [(0.05, 0.05), (0.3, 0.3), (0.06, 0.02)])
def test_no_decision_is_rare_when_the_order_is_unrelated_to_the_outcome(
    fixed: float, broken: float
) -> None:
    """Crossed bounds, or bounds that leave the running mean, are at most alpha of iid runs."""
    rng = np.random.default_rng(5)
    crossed = sum(
        first_decision(confidence_sequence(_pairs(rng, LOOKS, fixed, broken), ALPHA), 0.0)[0]
        == "inconsistent"
        for _ in range(SIMS)
    )
    assert crossed / SIMS <= 0.08, crossed
