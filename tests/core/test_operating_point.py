"""Operating point: the sweep, the cost optimum and constrained thresholds against brute force."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assay.core.accumulators.ranking import ScoreHistogramAccumulator
from assay.core.batch import make_batch
from assay.core.errors import InputError
from assay.core.intervals import IntervalConfig
from assay.core.operating_point import (
    Costs,
    OperatingSweeps,
    Sweep,
    cost_optimal,
    defect_run,
    meeting,
)
from assay.core.policy import parse_policy

LABELS = ("ok", "lump", "void")


def data(seed: int = 0, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(3, n, p=[0.7, 0.2, 0.1])
    raw = rng.dirichlet(np.ones(3), n)
    raw[np.arange(n), y] += rng.random(n)
    return y, np.round(raw / raw.sum(axis=1, keepdims=True), 3)


def defect_sweep(y: np.ndarray, s: np.ndarray) -> Sweep:
    acc = ScoreHistogramAccumulator(LABELS, IntervalConfig(n_resamples=100), negative_index=0)
    state = acc.update(acc.empty(), make_batch(y, s))
    sw = acc.finalize(state).extras["operating_sweep"]
    assert sw.positive == "defect (not ok)" and sw.sweep is not None
    return sw.sweep


def test_defect_sweep_counts_equal_a_direct_count_at_every_threshold() -> None:
    y, s = data()
    sw = defect_sweep(y, s)
    defect_score, is_defect = 1.0 - s[:, 0], y != 0
    for i, t in enumerate(sw.threshold):
        flagged = defect_score >= t - 1e-12
        assert sw.tp[i] == int((flagged & is_defect).sum())
        assert sw.fp[i] == int((flagged & ~is_defect).sum())
        assert sw.fn[i] == int((~flagged & is_defect).sum())
        assert sw.tn[i] == int((~flagged & ~is_defect).sum())


def test_cost_optimum_and_constraint_equal_brute_force() -> None:
    y, s = data(1)
    sw = defect_sweep(y, s)
    defect_score, is_defect = 1.0 - s[:, 0], y != 0
    costs = Costs(false_alarm=1.0, missed_defect=20.0)
    brute = min(
        (
            (
                1.0 * ((defect_score >= t) & ~is_defect).sum()
                + 20.0 * ((defect_score < t) & is_defect).sum()
            ),
            t,
        )
        for t in np.unique(defect_score)
    )
    best = cost_optimal(sw, costs)
    assert best is not None
    assert best["fp"] + 20 * best["fn"] == pytest.approx(brute[0])
    got = meeting(sw, "recall", 0.95)
    assert got is not None and got["recall"] >= 0.95
    # No threshold with recall >= 0.95 has fewer false alarms.
    fewest = min(
        ((defect_score >= t) & ~is_defect).sum()
        for t in np.unique(defect_score)
        if ((defect_score >= t) & is_defect).sum() >= 0.95 * is_defect.sum()
    )
    assert got["fp"] == fewest


def test_sweep_is_thinned_but_keeps_both_ends() -> None:
    y, s = data(2, 20_000)
    acc = ScoreHistogramAccumulator(LABELS, IntervalConfig(n_resamples=100))
    runs = acc.compact(acc.update(acc.empty(), make_batch(y, s)))
    sw = Sweep.of(defect_run(runs[0]), max_points=100)
    assert len(sw) <= 102
    assert sw.fn[-1] == 0 and sw.tp[0] + sw.fn[0] == int((y != 0).sum())
    assert sw.point(len(sw) - 1)["recall"] == 1.0


def test_policy_costs_and_constraint() -> None:
    p = parse_policy(
        {
            "checks": ["accuracy >= 0.5"],
            "costs": {"false_alarm": 1, "missed_defect": 50},
            "operating_constraint": "recall >= 0.99",
        },
        LABELS,
        "ok",
    )
    assert p.costs == Costs(1.0, 50.0) and p.operating_constraint == ("recall", 0.99)
    with pytest.raises(InputError, match="operating_constraint"):
        parse_policy(
            {"checks": ["accuracy >= 0.5"], "operating_constraint": "recall <= 0.99"}, LABELS, "ok"
        )
    with pytest.raises(InputError, match="costs"):
        parse_policy({"checks": ["accuracy >= 0.5"], "costs": {"false_alarms": 1}}, LABELS, "ok")


def test_one_vs_rest_sweeps_count_each_class_against_the_rest() -> None:
    y, s = data(3)
    acc = ScoreHistogramAccumulator(LABELS, IntervalConfig(n_resamples=100))
    sw = acc.finalize(acc.update(acc.empty(), make_batch(y, s))).extras["operating_sweep"]
    assert sw.sweep is None  # no good class: no defect-vs-good decision
    assert sw.one_vs_rest is not None
    for k, label in enumerate(LABELS):
        per = sw.one_vs_rest[label]
        for i, t in enumerate(per.threshold):
            flagged, is_k = s[:, k] >= t - 1e-12, y == k
            assert per.tp[i] == int((flagged & is_k).sum())
            assert per.fp[i] == int((flagged & ~is_k).sum())


def test_constraint_may_name_a_class() -> None:
    def constraint(text: str) -> str | None:
        p = parse_policy(
            {"checks": ["accuracy >= 0.5"], "operating_constraint": text}, LABELS, "ok"
        )
        return p.constraint_class

    assert constraint("recall[void] >= 0.9") == "void"
    assert constraint("recall >= 0.9") is None
    assert constraint("recall[defect] >= 0.9") is None  # the defect-vs-good decision
    with pytest.raises(InputError, match="unknown class 'dent'"):
        constraint("recall[dent] >= 0.9")


def test_sweeps_read_back_from_result_json_as_written() -> None:
    """result.json keeps each sweep as lists under threshold, tp, fp, fn, tn; the typed sweeps
    read back from it equal those written, and a multiclass model without a good class has
    no headline sweep."""
    y, s = data(4)
    for negative in (0, None):
        acc = ScoreHistogramAccumulator(
            LABELS, IntervalConfig(n_resamples=100), negative_index=negative
        )
        sw = acc.finalize(acc.update(acc.empty(), make_batch(y, s))).extras["operating_sweep"]
        written = json.loads(json.dumps(sw.to_dict()))
        assert set(written) == ({"one_vs_rest", "positive", "sweep"} if negative == 0
                                else {"one_vs_rest"})  # fmt: skip
        assert set(written["one_vs_rest"]["lump"]) == {"threshold", "tp", "fp", "fn", "tn"}
        back = OperatingSweeps.from_dict(written)
        assert back.to_dict() == written
        if negative == 0:
            assert back.sweep is not None and sw.sweep is not None
            assert np.array_equal(back.sweep.tp, sw.sweep.tp)


def test_a_false_alarm_constraint_keeps_the_highest_recall() -> None:
    y, s = data(5)
    sw = defect_sweep(y, s)
    defect_score, is_defect = 1.0 - s[:, 0], y != 0
    got = meeting(sw, "false_alarm_rate", 0.05)
    assert got is not None and got["false_alarm_rate"] <= 0.05
    most = max(
        ((defect_score >= t) & is_defect).sum()
        for t in np.unique(defect_score)
        if ((defect_score >= t) & ~is_defect).sum() <= 0.05 * (~is_defect).sum()
    )
    assert got["tp"] == most
