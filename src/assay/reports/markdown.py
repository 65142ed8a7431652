"""verdict.md: the verdict and the comparison, short enough for a merge-request comment."""

from __future__ import annotations

from assay.core.results import ValidationResult

ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "too_few": "❔", "inconclusive": "❔"}
DELTA_ROWS = [
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "mcc",
    "false_alarm_rate",
    "missed_defect_rate",
    "log_loss",
    "roc_auc",
]


def _num(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_verdict_markdown(result: ValidationResult) -> str:
    """Markdown summary: verdict, every check with its reason, and the paired comparison."""
    verdict = result.verdict or {"status": "fail", "checks": [], "summary": "no verdict"}
    status = str(verdict["status"]).upper()
    lines = [
        f"## Assay verdict: {ICONS.get(str(verdict['status']), '')} {status}",
        "",
        _cell(str(verdict.get("summary", ""))),
        "",
        f"**{result.model.name}@{result.model.number}** on **{result.dataset.name}@{result.dataset.number}**"
        + (
            f" vs baseline **{result.comparison['baseline']['model']}@{result.comparison['baseline']['number']}**"
            if result.comparison
            else ""
        )
        + f": {result.n_items} items, {result.n_judged} judged, {result.n_failed} not judged.",
        "",
        "| | check | value | limit | reason |",
        "|---|---|---|---|---|",
    ]
    for c in verdict["checks"]:
        lines.append(
            f"| {ICONS.get(c['status'], '')} {c['status']} | {_cell(c['name'])} | {_num(c['value'])} | "
            f"{_num(c['threshold'])} | {_cell(c['reason'])} |"
        )
    comp = result.comparison
    if comp:
        mc = comp["mcnemar"]
        lines += [
            "",
            f"**Paired comparison**: {comp['n_fixed']} fixed, {comp['n_broken']} broken, "
            f"{comp['n_both_right']} both right, {comp['n_both_wrong']} both wrong"
            + (f", {comp['n_not_comparable']} not comparable" if comp["n_not_comparable"] else "")
            + f" (McNemar exact p = {mc['p_value']:.3g}).",
            "",
            "| metric | baseline | candidate | Δ | interval |",
            "|---|---|---|---|---|",
        ]
        for name in DELTA_ROWS:
            d = comp["deltas"].get(name)
            if d is None:
                continue
            interval = "" if d["ci_low"] is None else f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
            lines.append(
                f"| {name} | {_num(d['baseline'])} | {_num(d['candidate'])} | {_num(d['delta'], True)} | {interval} |"
            )
    return "\n".join(lines) + "\n"
