"""Policy parsing: accepted forms and rejected ones (each error names the problem)."""

from __future__ import annotations

from typing import Any

import pytest

from assay.core.errors import InputError
from assay.core.policy import Change, CheckRule, default_policy, parse_policy

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
        ({"checks": ["accuracy => 0.9"]}, "cannot read check"),
        ({"checks": ["accuracy >= 0.9"], "max_unjudged": "lots"}, "max_unjudged"),
        ({"checks": ["accuracy >= 0.9"], "max_unjudged": -3}, "max_unjudged"),
        ({"checks": ["accuracy >= 0.9"], "on_inconclusive": "pass"}, "on_inconclusive"),
        ({"checks": [{"metric": "accuracy", "min": 0.9, "strict": "yes"}]}, "strict is true"),
        ({"checks": [{"metric": "recall", "min": 0.9}]}, "recall is one number per class"),
        (
            {"checks": [{"metric": "recall", "scope": "every_slice", "min": 0.9}], "slices": ["x"]},
            "on every slice check macro_recall",
        ),
        (
            {"checks": [{"metric": "accuracy", "scope": "every_slice", "min": 0.9}]},
            "needs 'slices:'",
        ),
        (
            {"checks": [{"metric": "roc_auc", "scope": "every_slice", "min": 0.9}]},
            "cannot be computed per slice",
        ),
        (
            {"checks": [{"metric": "aupro", "change": {"max_regression": 0.01}}]},
            "support evidence: point only",
        ),
        (
            {"checks": [{"metric": "accuracy", "min": 0.9, "max": 1.0}]},
            "exactly one of min, max or change",
        ),
        # Limits that can never fail passed any model (a hostile review's PASS on a constant
        # model); so did max_unjudged: 100% on a model that answered NaN for all but 2 items.
        ({"checks": ["accuracy >= 0"]}, "accuracy >= 0 can never fail"),
        ({"checks": ["false_alarm_rate <= 1"]}, "false_alarm_rate <= 1 can never fail"),
        (
            {"max_unjudged": "100%", "checks": ["accuracy >= 0.9"]},
            "a model that judged almost nothing",
        ),
        ({"checks": [{"metric": "accuracy", "change": {"max_regression": -0.1}}]}, "out of range"),
        ({"checks": ["mcc >= -2"]}, "out of range for mcc"),
        ({"checks": ["accuracy >= 0.9"], "max_unjudged": 1.0}, r"as a percentage \('2%'\) or"),
        ({"checks": []}, "non-empty list"),
        ({"checks": ["accuracy >= 0.9"], "confidence": 1.2}, "confidence must lie"),
        ({"checks": ["accuracy >= 0.9"], "evidence": "vibes"}, "evidence must be"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_bad_policies_are_rejected(raw: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_policy(raw, LABELS, "ok")


def test_a_brier_limit_no_two_class_model_can_fail_is_refused() -> None:
    """From a review: 'brier_score <= 1' passed an inverted two-class model (accuracy 0.08);
    the two-class Brier score is halved and never above 1, the catalog's 2 is the multiclass
    bound. On three classes 1 is a real limit."""
    two = ("good", "bad")
    with pytest.raises(InputError, match="brier_score <= 1 can never fail"):
        parse_policy({"checks": ["brier_score <= 1"]}, two, "good")
    with pytest.raises(InputError, match="out of range for brier_score"):
        parse_policy({"checks": ["brier_score <= 1.5"]}, two, "good")
    with pytest.raises(InputError, match="can never fail"):
        parse_policy(
            {"checks": [{"metric": "brier_score", "change": {"max_regression": 1}}]}, two, "good"
        )
    assert parse_policy({"checks": ["brier_score <= 1"]}, LABELS, "ok").checks
    assert parse_policy({"checks": ["brier_score < 1"]}, two, "good").checks


def test_false_alarm_rate_needs_the_good_class() -> None:
    with pytest.raises(InputError, match="needs the good class"):
        parse_policy({"checks": ["false_alarm_rate <= 0.01"]}, LABELS, None)


def test_default_policies_check_agreement_above_chance_and_coverage() -> None:
    with_baseline = default_policy(True)
    assert [(c.metric, c.scope) for c in with_baseline.checks] == [
        ("cohen_kappa", "overall"),
        ("accuracy", "overall"),
        ("recall", "every_class"),
    ]
    (alone,) = default_policy(False).checks
    assert (alone.metric, alone.minimum, alone.strict) == ("cohen_kappa", 0.0, True)
    assert alone.describe() == "cohen_kappa > 0"
    assert default_policy(False).max_unjudged.allows(1, 100)
    assert not default_policy(False).max_unjudged.allows(2, 100)
    assert default_policy(False).on_inconclusive == "fail"


@pytest.mark.parametrize(
    ("text", "strict", "bound"),
    [("cohen_kappa > 0", True, "min"), ("ece < 0.1", True, "max"), ("mcc >= 0.2", False, "min")],
)
def test_strict_and_loose_short_forms(text: str, strict: bool, bound: str) -> None:
    (rule,) = parse_policy({"checks": [text]}, LABELS, "ok").checks
    assert rule.strict is strict
    assert (rule.minimum if bound == "min" else rule.maximum) is not None
    assert rule.describe() == text


@pytest.mark.parametrize(
    ("raw", "share", "count"),
    [("2%", 0.02, None), (0.05, 0.05, None), (20, None, 20), ("0%", 0.0, None)],
)
def test_max_unjudged_takes_a_share_or_a_count(
    raw: Any, share: float | None, count: int | None
) -> None:
    policy = parse_policy({"checks": ["accuracy >= 0.5"], "max_unjudged": raw}, LABELS, "ok")
    assert (policy.max_unjudged.share, policy.max_unjudged.count) == (share, count)


def test_limits_read_in_the_metrics_own_direction() -> None:
    """verdict.md showed '+0.0100' as the limit beside a change of -0.3571 (a failure that read
    like a pass) and 'leaked_items <= 0' for '== 0', and counts as 3.0000."""
    from assay.reports.views.verdict import limit_text, value_text

    regression = Change("max_regression", 0.01)
    assert CheckRule("accuracy", change=regression).limit() == "Δ >= -0.01"
    assert CheckRule("log_loss", change=regression).limit() == "Δ <= +0.01"
    assert CheckRule("accuracy", change=Change("min_improvement", 0.005)).limit() == "Δ >= +0.005"
    assert CheckRule("accuracy", minimum=0.9).limit() == ">= 0.9"
    assert CheckRule("cohen_kappa", minimum=0.0, strict=True).limit() == "> 0"
    assert CheckRule("leaked_items", maximum=0.0).limit() == "== 0"
    assert CheckRule("leaked_items", maximum=0.0).describe() == "leaked_items == 0"
    assert value_text({"metric": "leaked_items", "value": 3.0, "limit": "== 0"}) == "3"
    assert value_text({"metric": "accuracy", "value": -0.35714, "limit": "Δ >= -0.01"}) == "-0.3571"
    assert value_text({"metric": "unjudged_share", "value": 0.004, "limit": "<= 1%"}) == "0.40%"
    assert limit_text({"threshold": 0.9}) == "0.9000"  # a result from before limits were kept


@pytest.mark.parametrize(
    "check",
    [
        {"metric": "accuracy", "change": {"max_regression": 1}},
        {"metric": "accuracy", "change": {"max_improvement": 1.0}},
        {"metric": "accuracy", "change": {"max_regression": "100%"}},
    ],
)
def test_change_limits_no_model_can_fail_are_refused(check: dict) -> None:
    """'no accuracy regression beyond 1' passed a candidate wrong on every item."""
    with pytest.raises(InputError, match="can never fail"):
        parse_policy({"checks": [check]}, ["a", "b"], None)
    # A fall of 100% of a lower-is-better metric's baseline is a real limit (log loss doubling).
    parse_policy({"checks": [{"metric": "log_loss", "change": {"max_regression": "100%"}}]},
                 ["a", "b"], None)  # fmt: skip
