"""Verdict: a policy applied to the evidence of a run (and of its comparison with a baseline).

The verdict is ``pass`` only on evidence: every headline check (an error-severity check on the
whole dataset) passed, at least one of them judges the model's quality, and the model judged
enough of the items (the coverage check every policy carries; zero judged items always fail).
A headline check that cannot tell makes the verdict ``inconclusive``, which blocks a release
unless the policy says ``on_inconclusive: warn``.

Every check ends as ``pass``, ``fail``, ``warn`` or ``too_few``. With ``evidence: confident`` a
check passes when its whole interval lies within the limit, fails when the evidence says the
limit is crossed (for families of classes or slices: a Benjamini-Hochberg q-value below alpha/2,
the one-sided level of the displayed interval), and otherwise says it cannot tell: ``too_few``
when the data could not detect a difference of the size the check cares about (minimum detectable
difference at the policy's power above the limit), ``warn`` when they could and the estimate sits
at the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Literal

from assay.core.comparison import OVERALL, Delta, SliceKey, slice_name
from assay.core.failures import MISSING_FEATURE, named_reasons
from assay.core.metric_catalog import is_estimate
from assay.core.metric_value import MetricValue
from assay.core.policy import (
    AUDIT_METRICS,
    COUNT_METRICS,
    PROFILE_METRICS,
    TASK_PER_CLASS_METRICS,
    CheckRule,
    Policy,
    UnjudgedLimit,
)
from assay.core.slicing import slice_order
from assay.core.stattests import (
    benjamini_hochberg,
    minimum_detectable_difference,
)

CheckStatus = Literal["pass", "fail", "warn", "too_few"]
VerdictStatus = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Coverage:
    """How many items the model judged, and why the others were not.

    ``n_without_reference`` items had no expert reference (no label, or experts without a
    majority): they are not the model's doing and stay out of the unjudged share.
    """

    n_items: int
    n_judged: int
    n_without_reference: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)

    @property
    def n_unjudged(self) -> int:
        return self.n_items - self.n_judged - self.n_without_reference

    @property
    def n_eligible(self) -> int:
        return self.n_items - self.n_without_reference


@dataclass
class Evidence:
    """What a verdict can look at: candidate metrics and, with a baseline, paired deltas."""

    labels: tuple[str, ...]
    candidate: dict[SliceKey, dict[str, MetricValue]]
    slice_sizes: dict[SliceKey, int]
    deltas: dict[SliceKey, dict[str, Delta]] = field(default_factory=dict)
    coverage: Coverage | None = None
    # Checks the run itself settled before any rule (e.g. calibration and test items are
    # disjoint): each joins the verdict, and one that failed fails it.
    preconditions: list[CheckResult] = field(default_factory=list)
    # A detector's or segmenter's own classes, which its per-class numbers (ap[scratch],
    # iou[crack]) name; ``labels`` are then the item-level decision's (good, defect).
    task_labels: tuple[str, ...] = ()

    @property
    def has_baseline(self) -> bool:
        return bool(self.deltas)


@dataclass
class CheckResult:
    name: str
    status: CheckStatus
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
    # Whether this check's outcome decides the verdict: a failure, or a headline check that could
    # not tell. Renderers mark exactly these red.
    blocks: bool = False
    # What the value must satisfy, as people read it (">= 0.9", "Δ >= -0.01", "<= 1%").
    limit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        """A check as ``to_dict`` wrote it (fields added since default; unknown ones ignored)."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Verdict:
    status: VerdictStatus
    checks: list[CheckResult]
    policy: dict[str, Any]
    # One line for people: why the verdict is what it is.
    summary: str = ""
    # Whether a release gate stops: fail, or inconclusive unless the policy says on_inconclusive: warn.
    blocking: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "blocking": self.blocking,
            "summary": self.summary,
            "counts": self.counts,
            "checks": [c.to_dict() for c in self.checks],
            "policy": self.policy,
        }

    @property
    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "warn": 0, "too_few": 0}
        for c in self.checks:
            out[c.status] += 1
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """A verdict as ``to_dict`` wrote it; results written before ``blocking`` existed block
        unless they passed."""
        status = data["status"]
        policy = dict(data.get("policy") or {})
        strict_too_few = policy.get("on_too_few") == "fail"
        checks = []
        for c in data.get("checks", []):
            check = CheckResult.from_dict(c)
            if "blocks" not in c:  # written before checks recorded it: from status and policy
                check.blocks = c["status"] == "fail" or (
                    strict_too_few and c["status"] == "too_few"
                )
            checks.append(check)
        return cls(
            status=status,
            checks=checks,
            policy=policy,
            summary=str(data.get("summary", "")),
            blocking=bool(data.get("blocking", status != "pass")),
        )


def _fmt(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.4f}"


def _members(rule: CheckRule, ev: Evidence) -> list[tuple[SliceKey, str]]:
    if rule.slice is not None:
        return [(rule.slice, rule.metric)]
    if rule.scope == "every_class":
        # A task's per-class number over the model's classes: over the item-level labels,
        # `ap` on every class checked ap[good] and ap[defect], undefined and 'too few', and a
        # detector that lost a class passed (a review).
        task = rule.metric in TASK_PER_CLASS_METRICS and ev.task_labels
        labels = ev.task_labels if task else ev.labels
        return [(OVERALL, f"{rule.metric}[{label}]") for label in labels]
    if rule.scope == "every_slice":
        return [
            (key, rule.metric) for key in sorted(ev.slice_sizes, key=slice_order) if key != OVERALL
        ]
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
    # Already decided by its interval; it still counts in the multiplicity correction.
    settled: CheckResult | None = None


class _Judge:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.alpha = 1.0 - policy.confidence
        self.z = NormalDist().inv_cdf(1.0 - self.alpha / 2.0)

    def mdd(self, std_error: float) -> float:
        return minimum_detectable_difference(std_error, self.policy.confidence, self.policy.power)

    def result(
        self,
        rule: CheckRule,
        key: SliceKey,
        metric: str,
        status: CheckStatus,
        reason: str,
        **kw: Any,
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
            limit=rule.limit(),
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
        kw = {"value": v, "threshold": threshold, "ci_low": lo, "ci_high": hi}
        op = (
            (">" if rule.strict else ">=")
            if rule.minimum is not None
            else ("<" if rule.strict else "<=")
        )

        def within(x: float) -> bool:
            """On the good side of the limit (the limit itself only when not strict)."""
            if rule.minimum is not None:
                return x > threshold if rule.strict else x >= threshold
            return x < threshold if rule.strict else x <= threshold

        if rule.evidence != "point" and (lo is None or hi is None) and is_estimate(metric):
            # An estimate from the sample with no interval (pycocotools' recalls, a pixel AUROC)
            # is no evidence either way: passing on its value alone would be a pass without it.
            return self.result(
                rule,
                key,
                metric,
                "too_few",
                f"{metric} = {v:.4f} has no interval: {m.note}"
                if m.note
                else f"{metric} = {v:.4f} has no interval: with evidence: confident it can "
                "neither pass nor fail; give this check evidence: point to judge the value alone",
                value=v,
                threshold=threshold,
            )
        if rule.evidence == "point" or lo is None or hi is None:
            status: CheckStatus = "pass" if within(v) else "fail"
            if rule.metric in COUNT_METRICS and op == "<=" and threshold == 0:
                # A count that must be zero, as the policy wrote it (leaked_items == 0).
                said = f"{metric} = {v:.0f}, needs == 0"
            else:
                said = f"{metric} = {v:.4f}, needs {op} {threshold:.4g}"
            return self.result(rule, key, metric, status, said, **kw)
        # The whole interval on the good side passes; the whole interval on the wrong side (the
        # limit included when strict: a model exactly at chance is no better than chance) fails.
        inside = within(lo) if rule.minimum is not None else within(hi)
        outside = not within(hi) if rule.minimum is not None else not within(lo)
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
        if rule.evidence != "point" and not d.has_interval:
            # Deciding on the estimate would be a pass without evidence.
            reason = (
                f"{desc}: no paired interval of the change; evidence: point decides on the estimate"
            )
            return self.result(rule, key, metric, "too_few", reason, **kw)
        if rule.evidence == "point":
            ok = {
                "max_regression": improvement >= -limit,
                "min_improvement": improvement >= limit,
                "max_improvement": improvement <= limit,
            }[change.kind]
            status: CheckStatus = "pass" if ok else "fail"
            return self.result(
                rule, key, metric, status, f"{desc}; limit {limit:.4g} on the estimate", **kw
            )
        assert d.ci_low is not None and d.ci_high is not None
        i_low, i_high = sorted((sign * d.ci_low, sign * d.ci_high))
        kw["min_detectable"] = mdd = self.mdd(d.std_error)
        pending = _Pending(
            rule, key, metric, desc, kw, limit, mdd, 1.0, change.kind == "min_improvement"
        )
        # Every check of the family gets its p-value, settled by its interval or not: the
        # Benjamini-Hochberg correction must count them all, or q-values come out too small.
        if change.kind == "max_regression":
            pending.p = d.p_value(-sign, limit)  # a regression beyond the limit
            if i_low >= -limit:
                pending.settled = self.result(
                    rule, key, metric, "pass", f"{desc}: no regression beyond {limit:.4g}", **kw
                )
            return pending
        pending.p = d.p_value(sign, limit)  # an improvement beyond the limit
        if change.kind == "min_improvement":
            if i_high < limit:
                reason = f"{desc}: confidently short of the required improvement {limit:.4g}"
                pending.settled = self.result(rule, key, metric, "fail", reason, **kw)
            return pending
        if i_low > limit:
            reason = f"{desc}: improvement confidently above {limit:.4g}, worth a second look"
            pending.settled = self.result(rule, key, metric, "fail", reason, **kw)
        else:
            pending.settled = self.result(
                rule, key, metric, "pass", f"{desc}: improvement within {limit:.4g}", **kw
            )
        return pending

    def decide(self, pending: _Pending, q: float) -> CheckResult:
        """Settle a pending check with its q-value at the one-sided level of the shown interval."""
        if pending.settled is not None:
            pending.settled.q_value = q
            return pending.settled
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
        if not pending.wants_improvement and pending.p < self.alpha / 2.0:
            # Beyond the limit on its own interval, not once the family is corrected for (a
            # review read "too few items to tell" beside an interval wholly past the limit).
            reason = (
                f"{desc}: beyond the allowed {limit:.4g} on its own (p = {pending.p:.3g}), not "
                f"once the family of checks is corrected for (q = {q:.3g}); cannot tell"
            )
            return self.result(rule, key, metric, "too_few", reason, **kw)
        if pending.mdd > limit:
            reason = f"{desc}: too few items to tell (detectable difference {pending.mdd:.4f} > limit {limit:.4g})"
            return self.result(rule, key, metric, "too_few", reason, **kw)
        reason = f"{desc}: the estimate sits at the limit {limit:.4g}; cannot tell (q = {q:.3g})"
        return self.result(rule, key, metric, "warn", reason, **kw)


def coverage_check(limit: UnjudgedLimit, coverage: Coverage) -> CheckResult:
    """The check every policy carries: the model judged enough of the items to be judged itself."""
    n, bad = coverage.n_eligible, coverage.n_unjudged
    share = bad / n if n else None
    why = named_reasons(coverage.reasons)
    base = f"{bad} of {n} items not judged" + (f" ({share:.2%})" if share is not None else "")
    if coverage.n_judged == 0:
        status: CheckStatus = "fail"
        every = named_reasons(coverage.reasons, without_reference=True)
        reason = f"no item was judged: nothing to base a verdict on ({every or 'no items'})"
    elif limit.allows(bad, n):
        status, reason = "pass", f"{base}; {limit.describe()}"
    else:
        status, reason = "fail", f"{base}, over the limit ({limit.describe()}): {why}"
    if status == "fail" and any(r.startswith(MISSING_FEATURE) for r in coverage.reasons):
        # A newcomer's SECOM run judged nothing and the line did not say what to change.
        reason += (
            "; a model that handles missing values takes them with missing: allow under "
            "input: in its spec"
        )
    counted = limit.count is not None
    return CheckResult(
        f"items judged: {limit.describe()}",
        status,
        # The value in the limit's unit: a share against a share, a count against a count.
        value=float(bad) if counted else share,
        threshold=float(limit.count) if limit.count is not None else limit.share,
        reason=reason,
        metric="unjudged_items" if counted else "unjudged_share",
        blocks=status == "fail",
        limit=limit.bound(),
    )


def _estimate_crosses(rule: CheckRule, r: CheckResult) -> bool:
    """Whether the check's estimate itself lies on the wrong side of its limit (what
    ``evidence: point`` would fail); False when there is no estimate."""
    if r.value is None or r.threshold is None:
        return False
    if rule.change is None:
        if rule.minimum is not None:
            return r.value <= r.threshold if rule.strict else r.value < r.threshold
        return r.value >= r.threshold if rule.strict else r.value > r.threshold
    improvement = -r.value if rule.lower_is_better else r.value
    return {
        "max_regression": improvement < -r.threshold,
        "min_improvement": improvement < r.threshold,
        "max_improvement": improvement > r.threshold,
    }[rule.change.kind]


def _in_family(rule: CheckRule) -> bool:
    """Whether a rule's checks are members of the family corrected for multiplicity: every
    class, every slice (not a single check of the overall metric, a class or a slice)."""
    return rule.slice is None and rule.scope in ("every_class", "every_slice")


def evaluate_policy(policy: Policy, ev: Evidence) -> Verdict:
    """Apply every rule of ``policy`` to the evidence, and decide the verdict on that evidence.

    Benjamini-Hochberg runs over the change checks of every class and every slice, across the
    whole policy (each with its p-value, whether its interval settled it or not); a single
    check is decided on its own.
    """
    judge = _Judge(policy)
    outcomes: list[tuple[CheckRule, CheckResult | _Pending]] = []
    for rule in policy.checks:
        for key, metric in _members(rule, ev):
            if rule.change is None:
                outcomes.append((rule, judge.value_check(rule, key, metric, ev)))
            else:
                outcomes.append((rule, judge.change_check(rule, key, metric, ev)))
    # The family is the class and slice checks: many looks at one question. A single check
    # (the overall metric, a named class or slice) is decided on its own interval: counted in
    # the family, a regression confidently beyond its limit became "cannot tell" once a policy
    # listed a few more checks that passed (a review: p = 0.006, q = 0.03).
    pending = [o for _, o in outcomes if isinstance(o, _Pending)]
    family = [o for o in pending if _in_family(o.rule)]
    q_values = {id(o): o.p for o in pending}
    q_values |= dict(zip(map(id, family), benjamini_hochberg([o.p for o in family]), strict=True))
    results = [
        (rule, judge.decide(o, q_values[id(o)]) if isinstance(o, _Pending) else o)
        for rule, o in outcomes
    ]
    checks: list[CheckResult] = []
    coverage = None if ev.coverage is None else coverage_check(policy.max_unjudged, ev.coverage)
    if coverage is not None:
        checks.append(coverage)
    undecided: list[CheckResult] = []
    failed: list[CheckResult] = []
    for c in ev.preconditions:
        checks.append(c)
        if c.status == "fail":
            c.blocks = True
            failed.append(c)
    quality_passed = False
    for rule, r in results:
        if r.status == "fail" or (policy.on_too_few == "fail" and r.status == "too_few"):
            r.blocks = True
            failed.append(r)
        elif r.status in ("too_few", "warn") and (
            rule.headline
            or (
                rule.severity == "fail"
                and rule.scope == "every_class"
                and _estimate_crosses(rule, r)
            )
        ):
            # A class too small to tell is a warning while its estimate is within the limit;
            # beyond it, the evidence in hand points to a regression it cannot confirm, and a
            # pass would be claimed against it (defect recall 12/12 -> 9/12 passed). Not so for
            # slices: there are many, and some estimate lies beyond the limit by chance (one of
            # 40 slices blocked a candidate better in every one, overall p = 1e-17).
            undecided.append(r)
            r.blocks = policy.on_inconclusive == "fail"
        elif (
            rule.headline
            and r.status == "pass"
            and rule.metric not in PROFILE_METRICS | AUDIT_METRICS
            and not (rule.change is not None and rule.change.kind == "max_improvement")
        ):
            # Latency, memory or a clean leakage audit say nothing of what the model judged,
            # nor does a gain that is not suspiciously large (a constant model, confidently
            # worse, passed a policy of one max_improvement check; a review).
            quality_passed = True
        checks.append(r)
    return _decide(policy, checks, coverage, failed, undecided, quality_passed)


def _decide(
    policy: Policy,
    checks: list[CheckResult],
    coverage: CheckResult | None,
    failed: list[CheckResult],
    undecided: list[CheckResult],
    quality_passed: bool,
) -> Verdict:
    n_passed = sum(c.status == "pass" for c in checks)
    tally = f"{n_passed} of {len(checks)} checks passed"
    # The coverage check itself, whatever its limit's unit: looked up by its metric's name, a
    # limit given as a count ('unjudged_items') was never seen and a failed check passed.
    if coverage is not None and coverage.status == "fail":
        return Verdict("fail", checks, policy.to_dict(), f"{coverage.reason} ({tally})", True)
    if failed:
        what = failed[0].name + (f" and {len(failed) - 1} more" if len(failed) > 1 else "")
        return Verdict("fail", checks, policy.to_dict(), f"failed: {what} ({tally})", True)
    blocking = policy.on_inconclusive == "fail"
    if undecided:
        what = undecided[0].name + (f" and {len(undecided) - 1} more" if len(undecided) > 1 else "")
        summary = f"cannot tell: {what} ({tally})"
        return Verdict("inconclusive", checks, policy.to_dict(), summary, blocking)
    if not quality_passed:
        summary = f"no check of the model's quality passed on evidence ({tally})"
        return Verdict("inconclusive", checks, policy.to_dict(), summary, blocking)
    return Verdict("pass", checks, policy.to_dict(), tally, False)


def verdict_blocks(verdict: Verdict | Mapping[str, Any]) -> bool:
    """Whether a verdict stops a release (serialised results written before ``blocking``
    existed block unless they passed)."""
    if isinstance(verdict, Verdict):
        return verdict.blocking
    return bool(verdict.get("blocking", verdict.get("status") != "pass"))
