"""VerdictView: the verdict, its checks and the paired comparison, as every renderer shows them.

Before this view the CLI, verdict.md and junit.xml each read ``result.verdict`` and
``result.comparison`` on their own, and each decided anew which checks block a release (junit
with a fallback for results from before ``blocks`` was recorded, the CLI without it). They now
share one reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from assay.core.metric_catalog import METRICS
from assay.core.results import ValidationResult
from assay.core.verdict import CheckResult, Verdict

# The changes verdict.md lists under the paired comparison, in this order (when reported).
# The changes the report, the web run page and verdict.md show, in order (what a run has of
# them: a classes-only model no log loss).
DELTA_ROWS = (
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "weighted_f1",
    "mcc",
    "cohen_kappa",
    "false_alarm_rate",
    "missed_defect_rate",
    "log_loss",
    "brier_score",
    "roc_auc",
    "pr_auc",
    "ece",
)
# A vision task's own numbers, shown before the item-level decision's: a detector's mAP change
# was in result.json and the checks but in neither the report's nor verdict.md's table.
TASK_DELTA_ROWS: dict[str, tuple[str, ...]] = {
    "detection": ("map", "map_50", "map_75", "mar_100"),
    "segmentation": ("mean_iou", "pixel_accuracy", "boundary_f1"),
    "anomaly": ("image_auroc", "image_aupr", "f1_max"),
}


def delta_rows(task: str | None) -> tuple[str, ...]:
    """The changes a report's table shows for a run of ``task``, in order."""
    return (*TASK_DELTA_ROWS.get(task or "", ()), *DELTA_ROWS)


NO_VERDICT = Verdict(status="fail", checks=[], policy={}, summary="no verdict", blocking=True)


# Characters no XML document may hold and no terminal or Markdown shows (control characters
# but tab and newline, lone surrogates, U+FFFE/U+FFFF): slice values and labels come from the
# data (GS1 barcodes carry \x1d), so they are shown as escapes, the same in every renderer.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def printable(text: str) -> str:
    """``text`` with each character of ``_UNPRINTABLE`` written as its Python escape."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


# Checks whose value counts items: shown as whole numbers, not 3.0000.
COUNTED = frozenset({"leaked_items", "decision_flips", "unjudged_items", "items_not_compared"})
# Checks whose value is a share of the items: shown as a percentage.
SHARES = frozenset({"unjudged_share", "items_not_compared_share"})


def value_text(check: dict[str, Any]) -> str:
    """A check's value as every renderer shows it: a count whole, a share of items as a
    percentage, a change signed, anything else to four decimals."""
    value = check.get("value")
    if value is None:
        return "—"
    metric = str(check.get("metric", "")).split("[")[0]
    limit = str(check.get("limit") or "")
    if metric in SHARES or limit.endswith("%"):
        return f"{value:.2%}"
    if metric in COUNTED and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:+.4f}" if limit.startswith("Δ") else f"{value:.4f}"


def limit_text(check: dict[str, Any]) -> str:
    """What the value must satisfy (``>= 0.9``, ``Δ >= -0.01``, ``== 0``, ``<= 1%``); results
    written before checks recorded it show the bare threshold."""
    if check.get("limit"):
        return str(check["limit"])
    threshold = check.get("threshold")
    return "—" if threshold is None else f"{threshold:.4f}"


@dataclass(frozen=True)
class CheckRow:
    name: str
    metric: str
    status: str
    value: float | None
    threshold: float | None
    reason: str
    # Whether this check alone stops a release (a failure, or a too_few the policy fails on).
    blocks: bool
    value_text: str = "—"
    limit_text: str = "—"


@dataclass(frozen=True)
class DeltaRow:
    metric: str
    title: str
    better: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def improved(self) -> bool | None:
        return improved(self.metric, self.ci_low, self.ci_high, self.better)


def improved(
    metric: str, ci_low: float | None, ci_high: float | None, better: str | None = None
) -> bool | None:
    """Whether the candidate is better on ``metric`` (whose ``better`` direction is the
    catalog's unless given), on evidence: True or False only when the change's interval
    excludes zero; None when it does not, or there is no interval (a sign alone is no
    evidence: a +0.00001 change is noise)."""
    if ci_low is None or ci_high is None or ci_low <= 0 <= ci_high:
        return None
    up = ci_low > 0
    if better is None:
        info = METRICS.get(metric.split("[")[0])
        better = "higher" if info is None else info.better
    return (not up) if better == "lower" else up


@dataclass(frozen=True)
class PairedView:
    baseline: str  # NAME@N
    reused: bool  # the baseline's predictions came from an earlier run
    n_fixed: int
    n_broken: int
    n_both_right: int
    n_both_wrong: int
    n_not_comparable: int
    mcnemar_p: float | None
    deltas: tuple[DeltaRow, ...]


@dataclass(frozen=True)
class VerdictView:
    status: str
    blocking: bool
    summary: str
    # Why a verdict that is not PASS does not block (on_inconclusive: warn); "" otherwise.
    note: str
    counts: dict[str, int]
    checks: tuple[CheckRow, ...]
    model: str  # NAME@N
    dataset: str  # NAME@N
    n_items: int
    n_judged: int
    n_failed: int
    finished_at: str
    paired: PairedView | None

    @classmethod
    def of(cls, result: ValidationResult) -> VerdictView:
        verdict = result.verdict or NO_VERDICT
        checks = tuple(_check(c) for c in verdict.checks)
        blocking = verdict.blocking
        status = str(verdict.status)
        counts = {s: sum(1 for c in checks if c.status == s) for s in ("pass", "fail", "warn")}
        counts["too_few"] = sum(1 for c in checks if c.status == "too_few")
        return cls(
            status=status,
            blocking=blocking,
            summary=printable(verdict.summary),
            note="" if blocking or status == "pass" else "not blocking: on_inconclusive: warn",
            counts=counts,
            checks=checks,
            model=f"{result.model.name}@{result.model.number}",
            dataset=f"{result.dataset.name}@{result.dataset.number}",
            n_items=result.n_items,
            n_judged=result.n_judged,
            n_failed=result.n_failed,
            finished_at=result.finished_at,
            paired=_paired(result.comparison, (result.task or {}).get("name")),
        )


def _check(check: CheckResult) -> CheckRow:
    c = check.to_dict()
    return CheckRow(
        name=printable(check.name),
        metric=printable(check.metric),
        status=str(check.status),
        value=check.value,
        threshold=check.threshold,
        reason=printable(check.reason),
        blocks=check.blocks,
        value_text=value_text(c),
        limit_text=printable(limit_text(c)),
    )


def _paired(comp: dict[str, Any] | None, task: str | None) -> PairedView | None:
    if not comp:
        return None
    deltas = []
    for name in delta_rows(task):
        d = comp["deltas"].get(name)
        if d is None:
            continue
        info = METRICS[name]
        deltas.append(
            DeltaRow(
                name,
                info.title,
                info.better,
                d["baseline"],
                d["candidate"],
                d["delta"],
                d["ci_low"],
                d["ci_high"],
            )
        )
    base = comp["baseline"]
    return PairedView(
        baseline=f"{base['model']}@{base['number']}",
        reused=bool(base.get("reused")),
        n_fixed=int(comp["n_fixed"]),
        n_broken=int(comp["n_broken"]),
        n_both_right=int(comp["n_both_right"]),
        n_both_wrong=int(comp["n_both_wrong"]),
        n_not_comparable=int(comp.get("n_not_comparable", 0)),
        mcnemar_p=(comp.get("mcnemar") or {}).get("p_value"),
        deltas=tuple(deltas),
    )
