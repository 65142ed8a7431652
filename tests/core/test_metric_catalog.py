"""The metric catalog is the one list of what Assay reports: every number a policy may check has
an entry, every entry is one a policy may check, and each entry's direction and range hold on the
numbers the accumulators compute."""

from __future__ import annotations

import numpy as np
import pytest

from assay.core import policy
from assay.core.accumulators.confusion import (
    HEADLINE,
    false_alarm_rate,
    missed_defect_rate,
)
from assay.core.metric_catalog import METRICS, lower_is_better, metric_info, title


def test_every_checkable_metric_has_one_entry_and_every_entry_is_checkable() -> None:
    checkable = (
        set().union(*policy.REPORTED.values())
        | policy.PROFILE_METRICS
        | policy.AUDIT_METRICS
        | policy.HEADLINE_METRICS
        | policy.PER_CLASS_METRICS
    )
    assert checkable == set(METRICS)
    assert all(name == info.name for name, info in METRICS.items())
    assert all(info.title for info in METRICS.values())


def test_suffixes_keep_their_entry() -> None:
    assert lower_is_better("false_alarm_rate[L1]")
    assert not lower_is_better("recall[scratch]")
    assert metric_info("recall[scratch]").per_class
    assert title("recall[scratch]") == "Recall [scratch]"
    assert title("not_a_metric") == "not_a_metric" and not lower_is_better("not_a_metric")
    with pytest.raises(KeyError):
        metric_info("not_a_metric")


def _confusion(rng: np.random.Generator, skill: float) -> np.ndarray:
    """A 3-class confusion matrix of a model that is right with probability ``skill``."""
    c = np.zeros((3, 3), np.int64)
    for label in rng.integers(0, 3, 600):
        predicted = label if rng.random() < skill else rng.integers(0, 3)
        c[label, predicted] += 1
    return c


@pytest.mark.parametrize("seed", range(5))
def test_direction_and_range_hold_on_what_the_accumulator_computes(seed: int) -> None:
    """A better model moves every confusion metric the way its entry says, within its bounds."""
    rng = np.random.default_rng(seed)
    worse, better = _confusion(rng, 0.3), _confusion(rng, 0.9)
    functions = {
        **HEADLINE,
        "false_alarm_rate": lambda c: false_alarm_rate(c, 0),
        "missed_defect_rate": lambda c: missed_defect_rate(c, 0),
    }
    for name, fn in functions.items():
        info = METRICS[name]
        low, high = float(fn(worse)), float(fn(better))
        for v in (low, high):
            assert info.bounds[0] <= v <= info.bounds[1], name
        assert (high < low) if info.better == "lower" else (high > low), name


def test_a_limit_outside_the_catalogs_bounds_is_refused() -> None:
    from assay.core.errors import InputError
    from assay.core.policy import parse_policy

    with pytest.raises(InputError, match="domain_auc"):
        parse_policy({"checks": ["domain_auc <= 1.5"]}, ["bad", "good"], "good")
    assert parse_policy({"checks": ["max_psi <= 1.5", "log_loss <= 3"]}, ["bad", "good"], "good")
