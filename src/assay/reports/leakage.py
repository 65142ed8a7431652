"""leakage.html: the leakage audit's findings and its pairs side by side, one offline file."""

from __future__ import annotations

from typing import Any

from assay.reports.html import template_environment


def render_leakage(audit: dict[str, Any], pairs: list[dict[str, Any]]) -> str:
    """``audit`` is leakage.json; ``pairs`` the first pairs with each side's thumbnail or row."""
    return (
        template_environment()
        .get_template("leakage.html.j2")
        .render(
            a=audit,
            pairs=pairs,
            title=f"Leakage audit: {audit['dataset']} against training set {audit['train']}",
            sub=f"dataset {audit['dataset_version'][:12]} · training {audit['train_version'][:12]}",
        )
    )
