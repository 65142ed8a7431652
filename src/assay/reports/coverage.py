"""coverage.html: how well a validation set covers a production sample, one offline file."""

from __future__ import annotations

from typing import Any

from assay.reports.html import template_environment


def render_coverage(audit: dict[str, Any]) -> str:
    """``audit`` is coverage.json."""
    return (
        template_environment()
        .get_template("coverage.html.j2")
        .render(
            a=audit,
            title=f"Coverage: {audit['dataset']} against production sample {audit['production']}",
            sub=f"{audit['n_production']} production items, {audit['n_items']} validation items",
        )
    )
