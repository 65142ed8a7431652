"""Policy: the release rules a validation is judged by.

A policy is parsed from plain data (the YAML is read by the caller). Mappings and lists may carry
a ``line`` attribute (the YAML line they started on), so that every error names its line. Rules
are checked against the model's labels before anything runs, and nothing is written for a policy
that does not parse.

    confidence: 0.95        # intervals and tests
    power: 0.8              # for minimum detectable differences ("too few items to tell")
    evidence: confident     # default for every check: point | confident
    on_too_few: warn        # too few items to tell on a class or slice: warn | fail
    on_inconclusive: fail   # too few items to tell on a headline check: fail (exit 1) | warn
    max_unjudged: 1%        # items the model could not judge: a share ("1%") or a count (20)
    reuse_budget:           # decisions a dataset may serve before the release needs fresh items
      max_decisions: 20
      on_exceeded: warn     # warn | fail
    slices: [camera, line]  # metadata columns for scope: every_slice
    min_slice_size: 30
    checks:
      - accuracy >= 0.95                      # value thresholds, short form
      - cohen_kappa > 0                       # strictly above: a constant model fails
      - metric: recall[void]
        min: 0.99
      - metric: accuracy                      # change thresholds against the baseline
        change: {max_regression: 0.01}        # absolute; "2%" is relative to the baseline
      - metric: recall
        scope: every_class
        change: {max_regression: 0.02}
      - metric: accuracy
        change: {max_improvement: 0.10}       # suspiciously large: warn
        severity: warn
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from assay.core.accumulators.confusion import CONFUSION_METRICS, RATE_METRICS
from assay.core.config import DEFAULT_CONFIDENCE, MAX_CONFIDENCE
from assay.core.errors import InputError, did_you_mean
from assay.core.metric_catalog import (
    AUDIT,
    EQUIVALENCE,
    METRICS,
    PROFILE,
    base_name,
    lower_is_better,
)
from assay.core.operating_point import Costs
from assay.core.slicing import parse_slice_spec
from assay.core.tasks.detection.mean_ap import COCO_SUMMARY

Evidence = Literal["point", "confident"]
Scope = Literal["overall", "every_class", "every_slice"]

# Detection, segmentation and anomaly numbers (``assay.core.tasks``), checked like any metric:
# absolute checks on their bootstrap interval, changes against the baseline on a paired one
# (but for ``POINT_ONLY_CHANGES``).
TASK_METRICS = {
    *COCO_SUMMARY,
    "mean_iou",
    "pixel_accuracy",
    "boundary_f1",
    "image_auroc",
    "image_aupr",
    "f1_max",
    "pixel_auroc",
    "aupro",
    "region_recall",
}
TASK_PER_CLASS_METRICS = {"ap", "ap_50", "ar_100", "iou", "dice"}
# What each task reports, so that a policy checking a number the task never computes (mAP of a
# classifier, log loss of an anomaly model) is refused before anything runs.
# How far the candidate's scores and decisions are from the baseline's, item by item (export
# equivalence, ``assay.core.equivalence``): they need a baseline and are checked with max or min,
# never as a change. Measurements (point evidence) but flip_rate, which has a Wilson interval.
EQUIVALENCE_METRICS = {m.name for m in EQUIVALENCE}
EQUIVALENCE_PER_CLASS = {m.name for m in EQUIVALENCE if m.per_class}
_ITEM_DECISION = {*CONFUSION_METRICS, *RATE_METRICS, "precision", "recall", "f1"}
_SCORES = {"roc_auc", "pr_auc", "log_loss", "brier_score", "ece"}
SCORE_METRICS = frozenset(_SCORES)  # what a model that gives only classes cannot have
_AGREEMENT = {"decision_flips", "flip_rate"}
REPORTED: dict[str, set[str]] = {
    "classification": _ITEM_DECISION | _SCORES | EQUIVALENCE_METRICS,
    "detection": _ITEM_DECISION | set(COCO_SUMMARY) | {"ap", "ap_50", "ar_100"},
    "segmentation": _ITEM_DECISION | {"mean_iou", "pixel_accuracy", "boundary_f1", "iou", "dice"},
    "anomaly": _ITEM_DECISION
    | {"image_auroc", "image_aupr", "f1_max", "pixel_auroc", "aupro", "region_recall"},
}


def check_task_metrics(policy: Policy, task: str, has_scores: bool = True) -> None:
    """Raise InputError when the policy checks a number that ``task`` does not report (with
    ``has_scores`` False: a classifier that gives a class per item and no scores)."""
    reported = REPORTED.get(task, set()) | PROFILE_METRICS | AUDIT_METRICS | _AGREEMENT
    if not has_scores:
        reported = reported - _SCORES - EQUIVALENCE_PER_CLASS
    for rule in policy.checks:
        base = rule.metric.split("[")[0]
        if base not in reported:
            where = f"{policy.source}" + (f" line {rule.line}" if rule.line else "")
            what = f"a {task} model" if has_scores else "a model that gives no scores"
            raise InputError(
                f"{where}: {what} has no {base!r} (it reports: "
                f"{', '.join(sorted(reported - PROFILE_METRICS))})"
            )


HEADLINE_METRICS = {
    *CONFUSION_METRICS,
    *RATE_METRICS,
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier_score",
    "ece",
    *TASK_METRICS,
}
PER_CLASS_METRICS = {"precision", "recall", "f1", "roc_auc", "pr_auc", *TASK_PER_CLASS_METRICS}
# The model's own cost, from its profile: measurements, checked on the estimate (evidence: point).
PROFILE_METRICS = {m.name for m in PROFILE}
# What the data audits measure, given with the validation: ``--train`` (the leakage audit:
# leaked_items), ``--production`` (the coverage audit: domain_auc, max_psi).
AUDIT_METRICS = {m.name for m in AUDIT}
# Counts a policy may require to be zero (``leaked_items == 0``).
COUNT_METRICS = {"leaked_items", "decision_flips"}
MEASURED = (
    PROFILE_METRICS | AUDIT_METRICS | {"max_abs_score_diff", "p99_abs_score_diff", "decision_flips"}
)
# Compared with the baseline on the estimate only: no paired interval is computed for these (an
# anomaly model's pixel numbers would need both models' maps, which runs do not keep). The other
# task numbers have one: ``services.paired_tasks``.
POINT_ONLY_CHANGES = {*PROFILE_METRICS, "pixel_auroc", "aupro", "region_recall"}
NEEDS_NEGATIVE = set(RATE_METRICS)
SLICEABLE = {
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "macro_precision",
    "macro_recall",
    "mcc",
    "cohen_kappa",
    "false_alarm_rate",
    "missed_defect_rate",
}
_SHORT = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]+\])?)\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>[-+0-9.eE]+)\s*$"
)


@dataclass(frozen=True)
class Change:
    """A limit on the change against the baseline, in the metric's own direction."""

    kind: Literal["max_regression", "min_improvement", "max_improvement"]
    amount: float
    relative: bool = False

    def describe(self) -> str:
        amount = f"{self.amount:.4g}%" if self.relative else f"{self.amount:.4g}"
        return {
            "max_regression": f"no regression beyond {amount}",
            "min_improvement": f"improvement of at least {amount}",
            "max_improvement": f"improvement not above {amount}",
        }[self.kind]


@dataclass(frozen=True)
class CheckRule:
    metric: str  # "accuracy", "recall[void]", or "recall" with scope every_class
    scope: Scope = "overall"
    minimum: float | None = None
    maximum: float | None = None
    change: Change | None = None
    evidence: Evidence = "confident"
    severity: Literal["fail", "warn"] = "fail"
    line: int | None = None
    # One named slice, e.g. (("camera", "3"),); None: the scope decides.
    slice: tuple[tuple[str, str], ...] | None = None
    # ``>`` / ``<``: the limit itself fails, so a model sitting exactly at chance cannot pass.
    strict: bool = False

    @property
    def lower_is_better(self) -> bool:
        return lower_is_better(self.metric)

    def describe(self) -> str:
        if self.change is not None:
            return f"{self.metric}: {self.change.describe()} vs baseline"
        return f"{self.metric} {self.limit()}"

    def limit(self) -> str:
        """What the value (or, for a change, Δ = candidate - baseline) must satisfy, in the
        metric's own direction: ``>= 0.9``, ``== 0`` (a count that may not exceed its least
        value), ``Δ >= -0.01`` (no regression of a higher-is-better metric beyond 0.01)."""
        if self.change is not None:
            c = self.change
            amount = f"{c.amount:.10g}%" if c.relative else f"{c.amount:.10g}"
            # In improvement units: a regression of a lower-is-better metric is a rise.
            floor, ceiling = ("<=", ">=") if self.lower_is_better else (">=", "<=")
            return {
                "max_regression": f"Δ {floor} {'+' if self.lower_is_better else '-'}{amount}",
                "min_improvement": f"Δ {floor} {'-' if self.lower_is_better else '+'}{amount}",
                "max_improvement": f"Δ {ceiling} {'-' if self.lower_is_better else '+'}{amount}",
            }[c.kind]
        low, _ = _metric_range(self.metric)
        if self.minimum is not None:
            return f"{'>' if self.strict else '>='} {self.minimum:.10g}"
        assert self.maximum is not None
        if self.maximum == low and not self.strict:
            return f"== {self.maximum:.10g}"
        return f"{'<' if self.strict else '<='} {self.maximum:.10g}"

    @property
    def headline(self) -> bool:
        """A check on the whole dataset whose error decides the verdict (not a class or slice family)."""
        return self.severity == "fail" and self.scope == "overall" and self.slice is None


@dataclass(frozen=True)
class ReuseBudget:
    """Every decision taken on a dataset adapts the next model to it a little (thresholds,
    architectures, early stopping): past ``max_decisions``, its numbers are optimistic."""

    max_decisions: int
    on_exceeded: Literal["warn", "fail"] = "warn"


@dataclass(frozen=True)
class UnjudgedLimit:
    """How many items the model may leave unjudged: a share of the items or a count.

    Items without an expert reference (no label, experts without a majority) are a property of the
    dataset, not of the model: they are reported, and neither counted nor in the denominator.
    """

    share: float | None = 0.01
    count: int | None = None

    def allows(self, n_unjudged: int, n_items: int) -> bool:
        if self.count is not None:
            return n_unjudged <= self.count
        assert self.share is not None
        return n_items > 0 and n_unjudged <= self.share * n_items

    def bound(self) -> str:
        """The limit as the checks' table shows it: ``<= 1%`` or ``<= 20`` (items)."""
        if self.count is not None:
            return f"<= {self.count}"
        assert self.share is not None
        return f"<= {self.share * 100:.4g}%"

    def describe(self) -> str:
        if self.count is not None:
            return f"at most {self.count} item(s) not judged"
        assert self.share is not None
        return f"at most {self.share * 100:.4g}% of items not judged"


@dataclass(frozen=True)
class Policy:
    checks: tuple[CheckRule, ...]
    confidence: float = 0.95
    power: float = 0.8
    evidence: Evidence = "confident"
    on_too_few: Literal["warn", "fail"] = "warn"
    slices: tuple[str, ...] = ()
    min_slice_size: int = 30
    source: str = "default"
    # Operating-point analysis: a cost per false alarm and per missed defect, and/or a constraint
    # ("recall", 0.99) or ("false_alarm_rate", 0.01) on the defect decision.
    costs: Costs | None = None
    operating_constraint: tuple[str, float] | None = None
    # The class a constraint names (``recall[scratch] >= 0.99``): the one-vs-rest sweep of that class
    # only. None: the headline decision (binary / defect vs good), or every class one-vs-rest.
    constraint_class: str | None = None
    max_unjudged: UnjudgedLimit = UnjudgedLimit()
    # A headline check that cannot tell: "fail" makes the verdict block (exit 1), "warn" reports it.
    on_inconclusive: Literal["fail", "warn"] = "fail"
    # How many decisions a dataset (all its versions) may serve before a release decision needs
    # items no earlier decision saw.
    reuse_budget: ReuseBudget | None = None
    # Whether the policy names its confidence (else it takes the run's: ``--confidence``).
    confidence_stated: bool = False

    @property
    def needs_baseline(self) -> bool:
        return any(
            c.change is not None or c.metric.split("[")[0] in EQUIVALENCE_METRICS
            for c in self.checks
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "costs": None
            if self.costs is None
            else {"false_alarm": self.costs.false_alarm, "missed_defect": self.costs.missed_defect},
            "operating_constraint": None
            if self.operating_constraint is None
            else list(self.operating_constraint),
            "constraint_class": self.constraint_class,
            "confidence": self.confidence,
            "power": self.power,
            "evidence": self.evidence,
            "on_too_few": self.on_too_few,
            "on_inconclusive": self.on_inconclusive,
            "max_unjudged": self.max_unjudged.describe(),
            "reuse_budget": None
            if self.reuse_budget is None
            else {
                "max_decisions": self.reuse_budget.max_decisions,
                "on_exceeded": self.reuse_budget.on_exceeded,
            },
            "slices": list(self.slices),
            "min_slice_size": self.min_slice_size,
            "checks": [
                c.describe() + ("" if c.scope == "overall" else f" ({c.scope})")
                for c in self.checks
            ],
        }


def _where(node: Any, source: str, key: str | None = None) -> str:
    """Where ``node`` (or its field ``key``, when the loader recorded the keys' lines) is."""
    line = getattr(node, "key_lines", {}).get(key) if key is not None else None
    line = line if line is not None else getattr(node, "line", None)
    return f"{source} line {line}" if line is not None else source


def _number(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: {what} must be a number, got {value!r}"[:300])
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits (a review: exit 3)
        raise InputError(f"{where}: {what} is too large a number") from None
    if not math.isfinite(number):
        raise InputError(f"{where}: {what} must be finite")
    return number


def _metric_range(metric: str, n_classes: int | None = None) -> tuple[float, float]:
    """The values ``metric`` can take (the catalog's bounds) for a model of ``n_classes``: a
    limit outside them is refused, and one at their edge can never fail."""
    info = METRICS.get(base_name(metric))
    if base_name(metric) == "brier_score" and n_classes == 2:
        return (0.0, 1.0)  # halved for two classes (scikit-learn's convention)
    return (0.0, math.inf) if info is None else info.bounds


# The average over classes of a per-class metric, where it has another name than macro_...
_AVERAGES = {"ap": "map", "ap_50": "map_50", "ar_100": "mar_100", "iou": "mean_iou"}


def check_metric(
    metric: str, scope: Scope, labels: Sequence[str], negative: str | None, where: str
) -> None:
    """Raise InputError when ``metric`` is unknown, names an unknown class, or cannot be computed."""
    if "[" in metric:
        match = re.fullmatch(r"([a-z0-9_]+)\[(.+)\]", metric)
        if match is None or match[1] not in PER_CLASS_METRICS | EQUIVALENCE_PER_CLASS:
            raise InputError(
                f"{where}: unknown metric {metric!r} (per-class metrics: {', '.join(sorted(PER_CLASS_METRICS))})"
            )
        if match[2] not in labels:
            raise InputError(
                f"{where}: unknown class {match[2]!r} in {metric}"
                f"{did_you_mean(match[2], labels)} (classes: {', '.join(labels)})"
            )
        if scope != "overall":
            raise InputError(f"{where}: {metric} names a class; use scope: overall")
        return
    if scope == "every_class":
        if metric not in PER_CLASS_METRICS:
            raise InputError(
                f"{where}: scope every_class needs a per-class metric ({', '.join(sorted(PER_CLASS_METRICS))}), got {metric!r}"
            )
        return
    if metric in PROFILE_METRICS | EQUIVALENCE_METRICS | AUDIT_METRICS:
        if scope != "overall":
            raise InputError(f"{where}: {metric} is a property of the model; use scope: overall")
        return
    if metric in PER_CLASS_METRICS and metric not in HEADLINE_METRICS:
        example = next((c for c in labels if c != negative), labels[0] if labels else "class")
        mean = _AVERAGES.get(metric, f"macro_{metric}")
        average = f"{mean} averages them" if mean in HEADLINE_METRICS else ""
        if scope == "every_slice":  # a class per slice is not checked; an average is
            raise InputError(
                f"{where}: {metric} is one number per class; on every slice check "
                + (f"{mean}, which averages them" if average else "a metric of the whole slice")
            )
        raise InputError(
            f"{where}: {metric} is one number per class: check it on every class (scope: "
            f"every_class) or on one ({metric}[{example}])" + (f"; {average}" if average else "")
        )
    if metric not in HEADLINE_METRICS:
        names = HEADLINE_METRICS | PROFILE_METRICS | EQUIVALENCE_METRICS | AUDIT_METRICS
        known = ", ".join(sorted(names))
        raise InputError(
            f"{where}: unknown metric {metric!r}{did_you_mean(metric, names)} "
            f"(known: {known}, or precision|recall|f1[class])"
        )
    if metric in NEEDS_NEGATIVE and negative is None:
        raise InputError(
            f"{where}: {metric} needs the good class: set 'negative:' in the model spec (binary models have it)"
        )
    if scope == "every_slice" and metric not in SLICEABLE:
        raise InputError(
            f"{where}: {metric} cannot be computed per slice yet (sliceable: {', '.join(sorted(SLICEABLE))})"
        )


def _parse_change(raw: Any, metric: str, where: str, n_classes: int | None = None) -> Change:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise InputError(
            f"{where}: change must be one of {{max_regression|min_improvement|max_improvement: amount}}"
        )
    ((kind, amount),) = raw.items()
    aliases = {
        "max_drop": "max_regression",
        "min_gain": "min_improvement",
        "max_gain": "max_improvement",
    }
    kind = aliases.get(kind, kind)
    if kind not in ("max_regression", "min_improvement", "max_improvement"):
        raise InputError(
            f"{where}: unknown change limit {kind!r} (max_regression, min_improvement, max_improvement)"
        )
    relative = isinstance(amount, str) and amount.strip().endswith("%")
    if relative:
        try:
            value = float(amount.strip()[:-1])
        except ValueError:
            raise InputError(
                f"{where}: change amount {amount!r} is not a number or a percentage"
            ) from None
        if not 0 < value <= 100:
            raise InputError(f"{where}: relative change {amount} must lie in (0%, 100%]")
    else:
        value = _number(amount, "change amount", where)
        low, high = _metric_range(metric, n_classes)
        if not 0 <= value <= (high - low):
            raise InputError(
                f"{where}: change amount {value} is out of range for {metric} (0 to {high - low:g})"
            )
        if kind != "min_improvement" and value >= high - low:
            raise InputError(
                f"{where}: a change limit of {value:g} on {metric} (whose values span "
                f"{high - low:g}) can never fail; a check that cannot fail is no evidence"
            )
    # A fall of 100% of the baseline is the candidate at 0, the least a metric that is never
    # below 0 can take: for a higher-is-better one, "no regression beyond 100%" always holds.
    info = METRICS.get(base_name(metric))
    higher = info is None or info.better == "higher"
    if (
        relative
        and kind == "max_regression"
        and value >= 100
        and higher
        and _metric_range(metric)[0] >= 0
    ):
        raise InputError(
            f"{where}: a change limit of {amount} on {metric} (never below 0) can never fail; "
            "a check that cannot fail is no evidence"
        )
    return Change(kind, value, relative)  # type: ignore[arg-type]


def _parse_check(
    raw: Any,
    index: int,
    policy: dict[str, Any],
    labels: Sequence[str],
    negative: str | None,
    source: str,
    line_hint: int | None = None,
) -> CheckRule:
    line = getattr(raw, "line", None) or line_hint
    where = f"{source} line {line}" if line else f"{source} check {index + 1}"
    if isinstance(raw, str):
        match = _SHORT.match(raw)
        if match is None:
            raise InputError(
                f"{where}: cannot read check {raw!r} (expected e.g. 'accuracy >= 0.95')"
            )
        try:
            value = float(match["value"])
        except ValueError:
            raise InputError(f"{where}: {match['value']!r} in {raw!r} is not a number") from None
        # ``==`` is for a count that must be zero (``leaked_items == 0``): the same as ``<= 0``.
        if match["op"] == "==" and (match["metric"] not in COUNT_METRICS or value != 0):
            raise InputError(
                f"{where}: '==' is for counts that must be zero ({', '.join(sorted(COUNT_METRICS))}"
                f" == 0); write {match['metric']} >= or <= a value"
            )
        raw = {
            "metric": match["metric"],
            "min" if match["op"].startswith(">") else "max": value,
            "strict": len(match["op"]) == 1,
        }
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: a check is a mapping or a 'metric >= value' string")
    allowed = {
        "metric",
        "scope",
        "min",
        "max",
        "change",
        "evidence",
        "severity",
        "name",
        "slice",
        "strict",
    }
    unknown = sorted(set(raw) - allowed)
    if unknown:
        at = getattr(raw, "key_lines", {}).get(unknown[0])
        raise InputError(
            f"{f'{source} line {at}' if at else where}: unknown field {unknown[0]!r} in check "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric:
        raise InputError(f"{where}: check needs a metric")
    scope = raw.get("scope", "overall")
    if scope not in ("overall", "every_class", "every_slice"):
        raise InputError(
            f"{where}: scope must be overall, every_class or every_slice, got {scope!r}"
        )
    check_metric(metric, "every_slice" if "slice" in raw else scope, labels, negative, where)
    named_slice = None
    if "slice" in raw:
        value = raw["slice"]
        if not isinstance(value, Mapping) or len(value) != 1 or scope != "overall":
            raise InputError(
                f"{where}: slice names one column and its value, e.g. slice: {{camera: 3}}"
            )
        ((column, level),) = value.items()
        named_slice = ((str(column), str(level)),)
        if str(column) not in policy["slices"]:
            policy["slices"].append(str(column))
    if scope == "every_slice" and not policy["slices"]:
        raise InputError(
            f"{where}: scope every_slice needs 'slices:' (metadata columns) in the policy"
        )
    limits = [k for k in ("min", "max", "change") if k in raw]
    if len(limits) != 1:
        raise InputError(f"{where}: a check has exactly one of min, max or change")
    measured = metric.split("[")[0] in MEASURED
    evidence = raw.get("evidence", "point" if measured else policy["evidence"])
    if evidence not in ("point", "confident"):
        raise InputError(f"{where}: evidence must be point or confident, got {evidence!r}")
    if measured and evidence != "point":
        raise InputError(f"{where}: {metric} is a measurement; its checks use evidence: point")
    if "change" in raw and metric.split("[")[0] in EQUIVALENCE_METRICS:
        raise InputError(
            f"{where}: {metric} already compares with the baseline: check it with max (or min)"
        )
    # A suspiciously large improvement is worth a look, not a block, unless the policy says so.
    is_flag = isinstance(raw.get("change"), Mapping) and set(raw["change"]) & {
        "max_improvement",
        "max_gain",
    }
    severity = raw.get("severity", "warn" if is_flag else "fail")
    if severity not in ("fail", "warn"):
        raise InputError(f"{where}: severity must be fail or warn, got {severity!r}")
    minimum = maximum = None
    change = None
    strict = raw.get("strict", False)
    if not isinstance(strict, bool) or (strict and "change" in raw):
        raise InputError(f"{where}: strict is true or false, and only for min or max")
    if "change" in raw:
        change = _parse_change(raw["change"], metric, where, len(labels))
        if evidence == "confident" and metric.split("[")[0] in POINT_ONLY_CHANGES:
            why = (
                "a measurement"
                if metric in PROFILE_METRICS
                else "no paired interval: runs keep no anomaly maps"
            )
            raise InputError(
                f"{where}: change checks on {metric} support evidence: point only ({why})"
            )
    else:
        bound = _number(raw[limits[0]], limits[0], where)
        low, high = _metric_range(metric, len(labels))
        if not low <= bound <= high:
            raise InputError(
                f"{where}: threshold {bound} is out of range for {metric} ({low:g} to {high:g})"
            )
        minimum, maximum = (bound, None) if limits[0] == "min" else (None, bound)
        if not strict and (minimum == low or maximum == high):
            op, side = (">=", "below") if minimum is not None else ("<=", "above")
            raise InputError(
                f"{where}: {metric} {op} {bound:g} can never fail ({metric} is never {side} "
                f"{bound:g}); a check that cannot fail is no evidence"
            )
    return CheckRule(
        metric, scope, minimum, maximum, change, evidence, severity, line, named_slice, strict
    )


def _item_line(items: Any, index: int) -> int | None:
    """The YAML line of a list item, when the loader recorded it (plain strings have no line)."""
    lines = getattr(items, "item_lines", None)
    return lines[index] if lines and index < len(lines) else None


def parse_policy(
    raw: Any, labels: Sequence[str], negative: str | None, source: str = "policy"
) -> Policy:
    """Build a Policy from parsed YAML; errors are one line naming the file, line and problem."""
    if not isinstance(raw, Mapping):
        raise InputError(f"{source}: expected a mapping with 'checks:' at the top level")
    allowed = {
        "confidence",
        "power",
        "evidence",
        "on_too_few",
        "slices",
        "min_slice_size",
        "checks",
        "costs",
        "operating_constraint",
        "max_unjudged",
        "on_inconclusive",
        "reuse_budget",
    }
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InputError(
            f"{_where(raw, source, unknown[0])}: unknown field {unknown[0]!r} (allowed: "
            f"{', '.join(sorted(allowed))})"
        )
    confidence = _number(raw.get("confidence", DEFAULT_CONFIDENCE), "confidence", source)
    if not 0.5 <= confidence <= MAX_CONFIDENCE:
        raise InputError(
            f"{source}: confidence must lie in [0.5, {MAX_CONFIDENCE}], got {confidence}"
        )
    power = _number(raw.get("power", 0.8), "power", source)
    if not 0.5 <= power < 1:
        raise InputError(f"{source}: power must lie in [0.5, 1), got {power}")
    evidence = raw.get("evidence", "confident")
    if evidence not in ("point", "confident"):
        raise InputError(f"{source}: evidence must be point or confident, got {evidence!r}")
    on_too_few = raw.get("on_too_few", "warn")
    if on_too_few not in ("warn", "fail"):
        raise InputError(f"{source}: on_too_few must be warn or fail, got {on_too_few!r}")
    on_inconclusive = raw.get("on_inconclusive", "fail")
    if on_inconclusive not in ("warn", "fail"):
        raise InputError(f"{source}: on_inconclusive must be fail or warn, got {on_inconclusive!r}")
    max_unjudged = _parse_unjudged(raw.get("max_unjudged", "1%"), source)
    budget = _parse_budget(raw.get("reuse_budget"), source)
    slices = raw.get("slices", []) or []
    if isinstance(slices, list):
        for spec in slices:
            parse_slice_spec(str(spec))  # syntax errors before anything runs
    if not isinstance(slices, list) or not all(isinstance(s, str) for s in slices):
        raise InputError(f"{_where(slices, source)}: slices must be a list of column names")
    min_slice_size = raw.get("min_slice_size", 30)
    if (
        not isinstance(min_slice_size, int)
        or isinstance(min_slice_size, bool)
        or min_slice_size < 1
    ):
        raise InputError(f"{source}: min_slice_size must be a positive integer")
    checks = raw.get("checks")
    if not isinstance(checks, list) or not checks:
        raise InputError(f"{source}: 'checks:' must be a non-empty list")
    context = {"evidence": evidence, "slices": list(slices)}
    rules = tuple(
        _parse_check(c, i, context, labels, negative, source, _item_line(checks, i))
        for i, c in enumerate(checks)
    )
    costs = _parse_costs(raw.get("costs"), _where(raw.get("costs"), source))
    constraint = _parse_constraint(raw.get("operating_constraint"), source)
    constraint_class = _constraint_class(raw.get("operating_constraint"), labels, source)
    # Columns named by a check's slice join the policy's slice columns.
    columns = tuple(context["slices"])
    return Policy(
        rules,
        confidence,
        power,
        evidence,
        on_too_few,
        columns,
        min_slice_size,
        source,
        costs,
        constraint,
        constraint_class,
        max_unjudged,
        on_inconclusive,
        budget,
        "confidence" in raw,
    )


def _parse_budget(raw: Any, source: str) -> ReuseBudget | None:
    if raw is None:
        return None
    where = f"{source}: reuse_budget"
    if not isinstance(raw, Mapping) or not set(raw) <= {"max_decisions", "on_exceeded"}:
        raise InputError(f"{where} takes max_decisions and on_exceeded (warn | fail)")
    n = raw.get("max_decisions")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"{where}: max_decisions must be a positive whole number, got {n!r}")
    on = raw.get("on_exceeded", "warn")
    if on not in ("warn", "fail"):
        raise InputError(f"{where}: on_exceeded must be warn or fail, got {on!r}")
    return ReuseBudget(n, on)


def _parse_unjudged(raw: Any, source: str) -> UnjudgedLimit:
    """``"2%"`` or a fraction below 1 (a share of the items), or a whole number (a count)."""
    where = f"{source}: max_unjudged"
    if isinstance(raw, str) and raw.strip().endswith("%"):
        try:
            share = float(raw.strip()[:-1]) / 100.0
        except ValueError:
            raise InputError(f"{where} {raw!r} is not a percentage") from None
        if not 0.0 <= share < 1.0:
            raise InputError(
                f"{where} must lie in [0%, 100%), got {raw}: at 100% a model that judged "
                "almost nothing would meet it"
            )
        return UnjudgedLimit(share=share)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InputError(f"{where} is a share like '1%' or a count like 20, got {raw!r}")
    if isinstance(raw, int) and raw >= 0:
        return UnjudgedLimit(share=None, count=raw)
    if isinstance(raw, float) and 0.0 <= raw < 1.0:
        return UnjudgedLimit(share=raw)
    if isinstance(raw, float) and raw >= 1.0:
        raise InputError(
            f"{where} {raw!r}: write a share as a percentage ('2%') or a fraction below 1, a "
            "count as a whole number (20)"
        )
    raise InputError(f"{where} is a share like '1%' or a count like 20, got {raw!r}")


def _parse_costs(raw: Any, where: str) -> Costs | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not raw or set(raw) - {"false_alarm", "missed_defect"}:
        raise InputError(
            f"{where}: costs takes false_alarm and missed_defect, e.g. {{false_alarm: 1, missed_defect: 50}}"
        )
    fa = _number(raw.get("false_alarm", 1.0), "costs.false_alarm", where)
    md = _number(raw.get("missed_defect", 1.0), "costs.missed_defect", where)
    if fa < 0 or md < 0 or fa + md == 0:
        raise InputError(f"{where}: costs must be non-negative and not both zero")
    return Costs(fa, md)


_CONSTRAINT = re.compile(
    r"^\s*(recall(?:\[[^\]]+\])?|false_alarm_rate)\s*(>=|<=)\s*([0-9.eE+-]+)\s*$"
)


def _parse_constraint(raw: Any, source: str) -> tuple[str, float] | None:
    if raw is None:
        return None
    match = _CONSTRAINT.match(str(raw))
    if match is None:
        raise InputError(
            f"{source}: operating_constraint must read 'recall >= 0.99' or 'false_alarm_rate <= 0.01', got {raw!r}"
        )
    metric = "recall" if match[1].startswith("recall") else "false_alarm_rate"
    if (metric == "recall") != (match[2] == ">="):
        raise InputError(
            f"{source}: operating_constraint bounds recall from below (>=) and false_alarm_rate from above (<=)"
        )
    bound = float(match[3])
    if not 0.0 <= bound <= 1.0:
        raise InputError(f"{source}: operating_constraint bound {bound} must lie in [0, 1]")
    return metric, bound


def _constraint_class(raw: Any, labels: Sequence[str], source: str) -> str | None:
    """The class in ``recall[scratch] >= 0.99``, checked against the model's labels."""
    match = None if raw is None else re.match(r"^\s*recall\[([^\]]+)\]", str(raw))
    if match is None:
        return None
    name = match[1].strip()
    if name == "defect" and name not in labels:
        return None  # the headline decision: any defect class against the good one
    if name not in labels:
        raise InputError(
            f"{source}: operating_constraint names unknown class {name!r} (classes: {', '.join(labels)})"
        )
    return name


# Chance-corrected: a model that ignores its input has kappa 0 whatever the class balance, so a
# useful defect detector passes on imbalanced data where "accuracy above the majority rate" fails it.
ABOVE_CHANCE = CheckRule("cohen_kappa", minimum=0.0, strict=True)


def default_policy(has_baseline: bool) -> Policy:
    """Without a policy file: agreement with the experts confidently above chance (Cohen's kappa
    > 0), at most 1% of items not judged, and with a baseline no confident regression beyond one
    point, overall and on any class."""
    rules: tuple[CheckRule, ...] = (ABOVE_CHANCE,)
    if has_baseline:
        change = Change("max_regression", 0.01)
        rules += (
            CheckRule("accuracy", change=change),
            CheckRule("recall", scope="every_class", change=change),
        )
    return Policy(rules, source="default")
