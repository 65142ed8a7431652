"""A validation as a Jupyter notebook shows it: the verdict with every check, the headline
numbers, and each of the report's sections inline, folded (``<details>``, no script needed, so
it also shows in an untrusted notebook, on GitHub and in nbviewer).

The sections are the report's own template (``report_sections.html.j2``); only the figures,
which need plotly.js, stay in the full report, a link away.
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path

from assay.core.results import ValidationResult
from assay.reports.html import render_sections, report_asset

# A section as the template writes it: its id, then its title as the first child.
_SECTION = re.compile(r'<section id="([a-z0-9-]+)">\s*<h2([^>]*)>(.*?)</h2>', re.DOTALL)
# Open at first sight: what decides and sums up the run.
OPEN = ("checks", "summary")

_STYLE = """
.assay-nb { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 13px; max-width: 1100px; }
.assay-nb details.section { border: 1px solid #e4e7eb; border-radius: 8px; margin: 8px 0; background: #fff; }
.assay-nb details.section > summary { cursor: pointer; padding: 8px 14px; font-weight: 600; font-size: 14px; }
.assay-nb details.section > .body { padding: 0 16px 12px; }
.assay-nb .figure { display: none; } .assay-nb nav.toc { display: none; }
.assay-nb .figures-note { color: #616e7c; font-size: 12px; }
.assay-nb .report .banner { margin: 6px 0 8px; }
"""


def _fold(html: str) -> str:
    """Each ``<section>`` becomes a ``<details>`` whose summary is the section's title."""
    out = _SECTION.sub(
        lambda m: (
            f'<details class="section" id="nb-{m[1]}"{" open" if m[1] in OPEN else ""}>'
            f'<summary>{m[3]}</summary><div class="body">'
        ),
        html,
    )
    return out.replace("</section>", "</div></details>")


def render_notebook_html(result: ValidationResult, report: Path | None = None) -> str:
    """The whole validation for a notebook cell's output."""
    sections = _fold(render_sections(result, None, None, static_tables=True))
    where = (
        f'<p class="figures-note">Figures (curves, operating point) are in the '
        f"full report: <code>{escape(str(report))}</code></p>"
        if report is not None
        else ""
    )
    head = (
        f"<p><b>{escape(result.model.name)}@{result.model.number}</b> on "
        f"<b>{escape(result.dataset.name)}@{result.dataset.number}</b>: "
        f"{result.n_items:,} items, {result.n_judged:,} judged, {result.n_failed:,} not judged"
        f" · run <code>{escape(result.run_id[:12])}</code></p>"
    )
    return (
        f'<div class="assay-nb"><style>{report_asset("report.css")}{_STYLE}</style>'
        f'<div class="report">{head}{sections}{where}</div></div>'
    )
