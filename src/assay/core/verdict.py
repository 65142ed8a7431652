"""Verdict: a policy applied to the evidence of a run (and of its comparison with a baseline).

Every check ends as ``pass``, ``fail``, ``warn`` or ``too_few``. With ``evidence: confident`` a
check passes when its whole interval lies within the limit, fails when the evidence says the
limit is crossed (for families of classes or slices: a Benjamini-Hochberg q-value below alpha/2,
the one-sided level of the displayed interval), and otherwise says it cannot tell: ``too_few``
when the data could not detect a difference of the size the check cares about (minimum detectable
difference at the policy's power above the limit), ``warn`` when they could and the estimate sits
at the limit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any

from assay.core.comparison import OVERALL, Delta, SliceKey, slice_name
from assay.core.metric_value import MetricValue
from assay.core.policy import CheckRule, Policy
from assay.core.stattests import (
    benjamini_hochberg,
    bootstrap_p_value,
    minimum_detectable_difference,
)


@dataclass
class Evidence:
    """What a verdict can look at: candidate metrics and, with a baseline, paired deltas."""

    labels: tuple[str, ...]
    candidate: dict[SliceKey, dict[str, MetricValue]]
    slice_sizes: dict[SliceKey, int]
    deltas: dict[SliceKey, dict[str, Delta]] = field(default_factory=dict)

    @property
    def has_baseline(self) -> bool:
        return bool(self.deltas)


@dataclass
class CheckResult:
    name: str
    status: str  # pass | fail | warn | too_few
    value: float | None
    threshold: float | None
    reason: str
    metric: str
    slice: str = "all items"
    severity: str = "fail"
    ci_low: float | None = None
    ci_high: float | None = None
    q_value: float | None = None
    min_detectable: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Verdict:
    status: str  # pass | fail
    checks: list[CheckResult]
    policy: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checks": [c.to_dict() for c in self.checks],
            "policy": self.policy,
        }

    @property
    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "warn": 0, "too_few": 0}
        for c in self.checks:
            out[c.status] += 1
        return out


def _fmt(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.4f}"


def _members(rule: CheckRule, ev: Evidence) -> list[tuple[SliceKey, str]]:
    if rule.slice is not None:
        return [(rule.slice, rule.metric)]
    if rule.scope == "every_class":
        return [(OVERALL, f"{rule.metric}[{label}]") for label in ev.labels]
    if rule.scope == "every_slice":
        return [(key, rule.metric) for key in sorted(ev.slice_sizes) if key != OVERALL]
    return [(OVERALL, rule.metric)]


@dataclass
class _Pending:
    """A change check the interval alone did not settle; its q-value will."""

    rule: CheckRule
    key: SliceKey
    metric: str
    desc: str
    kw: dict[str, Any]
    limit: float
    mdd: float
    p: float
    wants_improvement: bool


class _Judge:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.alpha = 1.0 - policy.confidence
        self.z = NormalDist().inv_cdf(1.0 - self.alpha / 2.0)

    def mdd(self, std_error: float) -> float:
        return minimum_detectable_difference(std_error, self.policy.confidence, self.policy.power)

    def result(
        self, rule: CheckRule, key: SliceKey, metric: str, status: str, reason: str, **kw: Any
    ) -> CheckResult:
        if status == "fail" and rule.severity == "warn":
            status, reason = "warn", reason + " (severity: warn)"
        name = rule.describe().replace(rule.metric, metric, 1)
        if key != OVERALL:
            name += f" on {slice_name(key)}"
        return CheckResult(
            name,
            status,
            reason=reason,
            metric=metric,
            slice=slice_name(key),
            severity=rule.severity,
            **kw,
        )

    def value_check(self, rule: CheckRule, key: SliceKey, metric: str, ev: Evidence) -> CheckResult:
        m = ev.candidate.get(key, {}).get(metric)
        threshold = rule.minimum if rule.minimum is not None else rule.maximum
        assert threshold is not None
        n = ev.slice_sizes.get(key, 0)
        if key != OVERALL and n < self.policy.min_slice_size:
            return self.result(
                rule,
                key,
                metric,
                "too_few",
                f"{n} items, fewer than min_slice_size {self.policy.min_slice_size}",
                value=None,
                threshold=threshold,
            )
        if m is None or m.value is None:
            note = m.note if m is not None and m.note else "no value on this data"
            return self.result(
                rule,
                key,
                metric,
                "too_few",
                f"{metric} is undefined: {note}",
                value=None,
                threshold=threshold,
            )
        v, lo, hi = m.value, m.ci_low, m.ci_high
        ok_point = v >= threshold if rule.minimum is not None else v <= threshold
        kw = {"value": v, "threshold": threshold, "ci_low": lo, "ci_high": hi}
        op = ">=" if rule.minimum is not None else "<="
        if rule.evidence == "point" or lo is None or hi is None:
            status = "pass" if ok_point else "fail"
            return self.result(
                rule, key, metric, status, f"{metric} = {v:.4f}, needs {op} {threshold:.4g}", **kw
            )
        inside = lo >= threshold if rule.minimum is not None else hi <= threshold
        outside = hi < threshold if rule.minimum is not None else lo > threshold
        interval = f"{metric} = {v:.4f} [{lo:.4f}, {hi:.4f}]"
        if inside:
            return self.result(
                rule,
                key,
                metric,
                "pass",
                f"{interval}: the whole interval is {op} {threshold:.4g}",
                **kw,
            )
        if outside:
            return self.result(
                rule,
                key,
                metric,
                "fail",
                f"{interval}: confidently on the wrong side of {threshold:.4g}",
                **kw,
            )
        return self.result(
            rule,
            key,
            metric,
            "too_few",
            f"{interval} straddles {threshold:.4g}: too few items to tell",
            **kw,
        )

    def change_check(
        self, rule: CheckRule, key: SliceKey, metric: str, ev: Evidence
    ) -> CheckResult | _Pending:
        """A finished result, or a pending one whose fate a (BH-adjusted) q-value decides."""
        change = rule.change
        assert change is not None
        d = ev.deltas.get(key, {}).get(metric)
        n = ev.slice_sizes.get(key, 0)
        if key != OVERALL and n < self.policy.min_slice_size:
            reason = f"{n} items, fewer than min_slice_size {self.policy.min_slice_size}"
            return self.result(rule, key, metric, "too_few", reason, value=None, threshold=None)
        if d is None or d.delta is None or d.baseline is None:
            reason = f"the change in {metric} is undefined on this data"
            return self.result(rule, key, metric, "too_few", reason, value=None, threshold=None)
        limit = change.amount / 100.0 * abs(d.baseline) if change.relative else change.amount
        # Work in "improvement" units: positive is better whatever the metric's direction.
        sign = -1.0 if rule.lower_is_better else 1.0
        improvement = sign * d.delta
        kw: dict[str, Any] = {
            "value": d.delta,
            "threshold": limit,
            "ci_low": d.ci_low,
            "ci_high": d.ci_high,
        }
        desc = f"Δ{metric} = {d.delta:+.4f}"
        if d.ci_low is not None and d.ci_high is not None:
            desc += f" [{d.ci_low:+.4f}, {d.ci_high:+.4f}]"
        desc += f" ({_fmt(d.baseline)} → {_fmt(d.candidate)}, {n} paired items)"
        if (
            rule.evidence == "point"
            or d.ci_low is None
            or d.ci_high is None
            or d.replicates.size == 0
        ):
            ok = {
                "max_regression": improvement >= -limit,
                "min_improvement": improvement >= limit,
                "max_improvement": improvement <= limit,
            }[change.kind]
            status = "pass" if ok else "fail"
            return self.result(
                rule, key, metric, status, f"{desc}; limit {limit:.4g} on the estimate", **kw
            )
        i_low, i_high = sorted((sign * d.ci_low, sign * d.ci_high))
        reps = sign * d.replicates
        kw["min_detectable"] = mdd = self.mdd(d.std_error)
        pending = _Pending(
            rule, key, metric, desc, kw, limit, mdd, 1.0, change.kind == "min_improvement"
        )
        if change.kind == "max_regression":
            if i_low >= -limit:
                return self.result(
                    rule, key, metric, "pass", f"{desc}: no regression beyond {limit:.4g}", **kw
                )
            pending.p = bootstrap_p_value(
                -reps, limit, "greater"
            )  # evidence of a regression beyond the limit
            return pending
        if change.kind == "min_improvement":
            if i_high < limit:
                reason = f"{desc}: confidently short of the required improvement {limit:.4g}"
                return self.result(rule, key, metric, "fail", reason, **kw)
            pending.p = bootstrap_p_value(
                reps, limit, "greater"
            )  # evidence of an improvement beyond it
            return pending
        if i_low > limit:
            reason = f"{desc}: improvement confidently above {limit:.4g}, worth a second look"
            return self.result(rule, key, metric, "fail", reason, **kw)
        return self.result(
            rule, key, metric, "pass", f"{desc}: improvement within {limit:.4g}", **kw
        )

    def decide(self, pending: _Pending, q: float) -> CheckResult:
        """Settle a pending check with its q-value at the one-sided level of the shown interval."""
        rule, key, metric, desc = pending.rule, pending.key, pending.metric, pending.desc
        kw = pending.kw | {"q_value": q}
        limit = pending.limit
        if q < self.alpha / 2.0:
            if pending.wants_improvement:
                return self.result(
                    rule,
                    key,
                    metric,
                    "pass",
                    f"{desc}: improvement above {limit:.4g} (q = {q:.3g})",
                    **kw,
                )
            return self.result(
                rule,
                key,
                metric,
                "fail",
                f"{desc}: confidently worse than the allowed {limit:.4g} (q = {q:.3g})",
                **kw,
            )
        if pending.mdd > limit:
            reason = f"{desc}: too few items to tell (detectable difference {pending.mdd:.4f} > limit {limit:.4g})"
            return self.result(rule, key, metric, "too_few", reason, **kw)
        reason = f"{desc}: the estimate sits at the limit {limit:.4g}; cannot tell (q = {q:.3g})"
        return self.result(rule, key, metric, "warn", reason, **kw)


def evaluate_policy(policy: Policy, ev: Evidence) -> Verdict:
    """Apply every rule of ``policy`` to the evidence; families of classes/slices get BH control."""
    judge = _Judge(policy)
    results: list[CheckResult] = []
    for rule in policy.checks:
        members = _members(rule, ev)
        if rule.change is None:
            results += [judge.value_check(rule, key, metric, ev) for key, metric in members]
            continue
        outcomes = [judge.change_check(rule, key, metric, ev) for key, metric in members]
        pending = [o for o in outcomes if isinstance(o, _Pending)]
        q_values = dict(
            zip(map(id, pending), benjamini_hochberg([o.p for o in pending]), strict=True)
        )
        results += [
            judge.decide(o, q_values[id(o)]) if isinstance(o, _Pending) else o for o in outcomes
        ]
    failing = any(r.status == "fail" for r in results) or (
        policy.on_too_few == "fail" and any(r.status == "too_few" for r in results)
    )
    return Verdict("fail" if failing else "pass", results, policy.to_dict())
