"""verdict.md: the verdict and the comparison, short enough for a merge-request comment."""

from __future__ import annotations

import re

from assay.core.results import ValidationResult
from assay.reports.views.verdict import VerdictView

_TAG = re.compile(r"<(?=[A-Za-z/!?])")  # what opens a tag, a comment or a declaration
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
_ESCAPING = re.compile(r"\\(?=[!-/:-@\[-`{-~])")  # a backslash before ASCII punctuation
ICONS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "too_few": "❔", "inconclusive": "❔"}


def _num(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


def _cell(text: str) -> str:
    """Text from the data (class names, slice values, reasons) as one table cell: a forge's
    Markdown renders HTML, so a class named ``<img src=...>`` would be a tag in the comment."""
    # Only what HTML would read as a tag or an entity: "<= 1%" stays readable in the raw file.
    text = _ENTITY.sub("&amp;", text)
    text = _TAG.sub("&lt;", text)
    # A backslash before punctuation escapes it in Markdown: 'a\\|b' became 'a\\\\|b', an escaped
    # backslash and a bare pipe that split the cell (a review). Others are literal ('\\x0b').
    text = _ESCAPING.sub(r"\\\\", text)
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def render_verdict_markdown(result: ValidationResult) -> str:
    """Markdown summary: verdict, every check with its reason, and the paired comparison."""
    view = VerdictView.of(result)
    paired = view.paired
    lines = [
        f"## Assay verdict: {ICONS.get(view.status, '')} {view.status.upper()}",
        "",
        _cell(view.summary) + (f" ({_cell(view.note)})" if view.note else ""),
        "",
        f"**{view.model}** on **{view.dataset}**"
        + (f" vs baseline **{paired.baseline}**" if paired else "")
        + f": {view.n_items} items, {view.n_judged} judged, {view.n_failed} not judged.",
        "",
        "| | check | value | limit | reason |",
        "|---|---|---|---|---|",
    ]
    for c in view.checks:
        lines.append(
            f"| {ICONS.get(c.status, '')} {c.status} | {_cell(c.name)} | {_cell(c.value_text)} | "
            f"{_cell(c.limit_text)} | {_cell(c.reason)} |"
        )
    if paired:
        p_value = "—" if paired.mcnemar_p is None else f"{paired.mcnemar_p:.3g}"
        lines += [
            "",
            f"**Paired comparison**: {paired.n_fixed} fixed, {paired.n_broken} broken, "
            f"{paired.n_both_right} both right, {paired.n_both_wrong} both wrong"
            + (f", {paired.n_not_comparable} not comparable" if paired.n_not_comparable else "")
            + f" (McNemar exact p = {p_value}).",
            "",
            "| metric | baseline | candidate | Δ | interval |",
            "|---|---|---|---|---|",
        ]
        for d in paired.deltas:
            interval = "" if d.ci_low is None else f"[{d.ci_low:+.4f}, {d.ci_high:+.4f}]"
            # Marked only where the interval excludes no change (see DeltaRow.improved).
            way = {True: " better", False: " worse", None: ""}[d.improved]
            title = d.title + (" (lower is better)" if d.better == "lower" else "")
            lines.append(
                f"| {_cell(title)} | {_num(d.baseline)} | {_num(d.candidate)} | "
                f"{_num(d.delta, True)}{way} | {interval} |"
            )
    return "\n".join(lines) + "\n"
