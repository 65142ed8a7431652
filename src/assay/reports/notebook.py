"""A compact HTML summary of a result for Jupyter (the full report is a link away)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from assay.core.results import ValidationResult

KEYS = ["accuracy", "balanced_accuracy", "macro_f1", "mcc", "roc_auc", "pr_auc", "log_loss", "ece"]


def render_notebook_html(result: ValidationResult, report: Path | None = None) -> str:
    rows = []
    for key in KEYS:
        m = result.metrics.get(key)
        if m is None:
            continue
        value = "—" if m.value is None else f"{m.value:.4f}"
        interval = (
            "" if m.ci_low is None or m.ci_high is None else f"[{m.ci_low:.4f}, {m.ci_high:.4f}]"
        )
        rows.append(
            f"<tr><td>{escape(key)}</td><td style='text-align:right'>{value}</td><td>{interval}</td></tr>"
        )
    link = f"<p>Full report: <code>{escape(str(report))}</code></p>" if report else ""
    if result.verdict is not None:
        status = str(result.verdict["status"])
        colour = "#067647" if status == "pass" else "#b42318"
        link = (
            f"<p style='color:{colour};font-weight:600'>verdict: {status.upper()}: "
            + escape(str(result.verdict.get("summary", "")))
            + "</p>"
            + link
        )
    return (
        f"<div><b>{escape(result.model.name)}@{result.model.number}</b> on "
        f"<b>{escape(result.dataset.name)}@{result.dataset.number}</b>: {result.n_items} items, "
        f"{result.n_judged} judged, {result.n_failed} not judged"
        f"<table><tr><th>metric</th><th>value</th><th>interval</th></tr>{''.join(rows)}</table>{link}</div>"
    )
