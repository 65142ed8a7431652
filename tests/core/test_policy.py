"""Policy parsing: accepted forms and rejected ones (each error names the problem)."""

from __future__ import annotations

from typing import Any

import pytest

from assay.core.errors import InputError
from assay.core.policy import Change, default_policy, parse_policy

LABELS = ("ok", "lump", "void")


def test_short_and_long_forms_and_defaults() -> None:
    policy = parse_policy(
        {
            "confidence": 0.9,
            "slices": ["camera"],
            "checks": [
                "accuracy >= 0.95",
                "false_alarm_rate <= 0.01",
                {"metric": "recall[void]", "min": 0.99, "evidence": "point"},
                {"metric": "macro_f1", "change": {"max_regression": "2%"}},
                {"metric": "recall", "scope": "every_class", "change": {"max_drop": 0.02}},
                {"metric": "accuracy", "change": {"max_improvement": 0.1}},
                {"metric": "accuracy", "slice": {"line": "L3"}, "min": 0.9},
            ],
        },
        LABELS,
        "ok",
    )
    assert policy.confidence == 0.9 and policy.needs_baseline
    rules = policy.checks
    assert (rules[0].metric, rules[0].minimum, rules[0].evidence) == ("accuracy", 0.95, "confident")
    assert rules[1].maximum == 0.01 and rules[1].lower_is_better
    assert rules[3].change == Change("max_regression", 2.0, relative=True)
    assert rules[4].change == Change("max_regression", 0.02) and rules[4].scope == "every_class"
    # A suspiciously large improvement warns unless told otherwise.
    assert rules[5].severity == "warn"
    assert rules[6].slice == (("line", "L3"),)
    assert policy.slices == ("camera", "line")  # a named slice's column is sliced too


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"checks": ["accuracy > 0.9"]}, "cannot read check"),
        ({"checks": [{"metric": "recall", "min": 0.9}]}, "unknown metric 'recall'"),
        (
            {"checks": [{"metric": "accuracy", "scope": "every_slice", "min": 0.9}]},
            "needs 'slices:'",
        ),
        (
            {"checks": [{"metric": "roc_auc", "scope": "every_slice", "min": 0.9}]},
            "cannot be computed per slice",
        ),
        (
            {"checks": [{"metric": "roc_auc", "change": {"max_regression": 0.01}}]},
            "support evidence: point only",
        ),
        (
            {"checks": [{"metric": "accuracy", "min": 0.9, "max": 1.0}]},
            "exactly one of min, max or change",
        ),
        ({"checks": [{"metric": "accuracy", "change": {"max_regression": -0.1}}]}, "out of range"),
        ({"checks": ["mcc >= -2"]}, "out of range for mcc"),
        ({"checks": []}, "non-empty list"),
        ({"checks": ["accuracy >= 0.9"], "confidence": 1.2}, "confidence must lie"),
        ({"checks": ["accuracy >= 0.9"], "evidence": "vibes"}, "evidence must be"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_bad_policies_are_rejected(raw: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_policy(raw, LABELS, "ok")


def test_false_alarm_rate_needs_the_good_class() -> None:
    with pytest.raises(InputError, match="needs the good class"):
        parse_policy({"checks": ["false_alarm_rate <= 0.01"]}, LABELS, None)


def test_default_policies() -> None:
    with_baseline = default_policy(True, 0.9)
    assert [(c.metric, c.scope) for c in with_baseline.checks] == [
        ("accuracy", "overall"),
        ("recall", "every_class"),
    ]
    (alone,) = default_policy(False, 0.9).checks
    assert (alone.metric, alone.minimum) == ("accuracy", 0.9)
