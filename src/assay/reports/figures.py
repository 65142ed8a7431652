"""Plotly figures of a result, as JSON specs the report's inlined plotly.js draws."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from assay.core.results import ValidationResult

_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
}


def _fig(data: list[dict[str, Any]], layout: dict[str, Any]) -> str:
    # "</" is escaped so that a label can never close the surrounding <script> element.
    return json.dumps({"data": data, "layout": {**_LAYOUT, **layout}}).replace("</", "<\\/")


def confusion_figure(result: ValidationResult) -> str:
    """Heatmap of row-normalised rates, annotated with counts."""
    labels = list(result.labels)
    counts = result.confusion_matrix
    rates = [[c / max(1, sum(row)) for c in row] for row in counts]
    text = [
        [f"{c}<br>{r:.0%}" if c else "" for c, r in zip(row, rrow, strict=True)]
        for row, rrow in zip(counts, rates, strict=True)
    ]
    return _fig(
        [
            {
                "type": "heatmap",
                "z": rates,
                "x": labels,
                "y": labels,
                "text": text,
                "texttemplate": "%{text}",
                "hovertemplate": "expert %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
                # Light for empty cells, dark for full ones; plotly's named "Blues" runs the other way.
                "colorscale": [
                    [0.0, "#f8fafc"],
                    [0.25, "#bfdbfe"],
                    [0.6, "#3b82f6"],
                    [1.0, "#1e3a8a"],
                ],
                "zmin": 0,
                "zmax": 1,
                "showscale": False,
            }
        ],
        {
            "xaxis": {"title": {"text": "predicted"}, "side": "bottom", "automargin": True},
            "yaxis": {
                "title": {"text": "expert label"},
                "autorange": "reversed",
                "automargin": True,
            },
            "height": max(320, 60 + 48 * len(labels)),
        },
    )


def reliability_figure(result: ValidationResult) -> str:
    bins = [b for b in result.reliability if b["n_items"] > 0]
    return _fig(
        [
            {
                "type": "scatter",
                "x": [0, 1],
                "y": [0, 1],
                "mode": "lines",
                "name": "perfect calibration",
                "line": {"dash": "dot", "color": "#999"},
            },
            {
                "type": "scatter",
                "x": [b["mean_confidence"] for b in bins],
                "y": [b["accuracy"] for b in bins],
                "mode": "lines+markers",
                "name": "model",
                "marker": {
                    "size": [
                        6 + 14 * (b["n_items"] / max(x["n_items"] for x in bins)) ** 0.5
                        for b in bins
                    ]
                },
                "text": [f"{b['n_items']} items" for b in bins],
                "hovertemplate": "confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{text}<extra></extra>",
            },
        ],
        {
            "xaxis": {"title": {"text": "mean confidence"}, "range": [0, 1]},
            "yaxis": {"title": {"text": "accuracy"}, "range": [0, 1.02]},
            "height": 360,
        },
    )


def curve_figure(result: ValidationResult, kind: str) -> str:
    """ROC (kind='roc') or precision-recall (kind='pr') curves, one per class."""
    data = []
    for label, curves in result.curves.items():
        c = curves.get(kind, {})
        x, y = (
            (c.get("fpr", []), c.get("tpr", []))
            if kind == "roc"
            else (c.get("recall", []), c.get("precision", []))
        )
        if x:
            data.append({"type": "scatter", "mode": "lines", "x": x, "y": y, "name": label})
    axes = (
        ("false positive rate", "true positive rate") if kind == "roc" else ("recall", "precision")
    )
    return _fig(
        data,
        {
            "xaxis": {"title": {"text": axes[0]}, "range": [0, 1]},
            "yaxis": {"title": {"text": axes[1]}, "range": [0, 1.02]},
            "height": 360,
        },
    )


def detection_pr_figure(result: ValidationResult) -> str:
    """Per-class precision-recall curves of a detector at IoU 0.5 (COCO's interpolation)."""
    curves = ((result.task or {}).get("detection") or {}).get("pr_curves_iou_50", {})
    data = [
        {"type": "scatter", "mode": "lines", "x": c["recall"], "y": c["precision"], "name": label}
        for label, c in curves.items()
    ]
    return _fig(
        data,
        {
            "xaxis": {"title": {"text": "recall of expert boxes"}, "range": [0, 1]},
            "yaxis": {"title": {"text": "precision of model boxes"}, "range": [0, 1.02]},
            "height": 340,
        },
    )


def confusion_diff_figure(result: ValidationResult) -> str:
    """Baseline, candidate and their difference (candidate - baseline counts), side by side."""
    comp = result.comparison or {}
    labels = list(result.labels)
    base = comp.get("baseline_confusion_matrix", [])
    cand = result.confusion_matrix
    diff = [[c - b for c, b in zip(rc, rb, strict=True)] for rc, rb in zip(cand, base, strict=True)]
    span = max(1, max((abs(v) for row in diff for v in row), default=1))
    # On the diagonal more is better (green); off it, more is worse (red).
    good = [[(v if i == j else -v) for j, v in enumerate(row)] for i, row in enumerate(diff)]
    blues = [[0.0, "#f8fafc"], [0.25, "#bfdbfe"], [0.6, "#3b82f6"], [1.0, "#1e3a8a"]]

    def heat(
        z: list[list[float]],
        text: list[list[str]],
        axis: str,
        scale: object,
        zmin: float,
        zmax: float,
    ) -> dict[str, object]:
        return {
            "type": "heatmap",
            "z": z,
            "x": labels,
            "y": labels,
            "text": text,
            "texttemplate": "%{text}",
            "xaxis": axis,
            "yaxis": "y",
            "colorscale": scale,
            "zmin": zmin,
            "zmax": zmax,
            "showscale": False,
            "hovertemplate": "expert %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
        }

    def rates(m: list[list[int]]) -> list[list[float]]:
        return [[c / max(1, sum(row)) for c in row] for row in m]

    data = [
        heat(rates(base), [[str(c) if c else "" for c in row] for row in base], "x", blues, 0, 1),
        heat(rates(cand), [[str(c) if c else "" for c in row] for row in cand], "x2", blues, 0, 1),
        heat(
            good,
            [[f"{v:+d}" if v else "" for v in row] for row in diff],
            "x3",
            [[0.0, "#b42318"], [0.5, "#f8fafc"], [1.0, "#067647"]],
            -span,
            span,
        ),
    ]
    layout = {
        "grid": {"rows": 1, "columns": 3, "pattern": "independent"},
        "xaxis": {"domain": [0.0, 0.3], "title": {"text": "baseline"}, "automargin": True},
        "xaxis2": {"domain": [0.35, 0.65], "title": {"text": "candidate"}, "automargin": True},
        "xaxis3": {
            "domain": [0.7, 1.0],
            "title": {"text": "candidate - baseline"},
            "automargin": True,
        },
        "yaxis": {"autorange": "reversed", "automargin": True, "title": {"text": "expert label"}},
        "height": max(320, 60 + 44 * len(labels)),
    }
    return _fig(data, layout)


def _marks(op: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    named = [
        ("current", op.get("current"), "#111827"),
        ("cost-optimal", op.get("cost_optimal"), "#067647"),
        (op.get("constraint", "constraint"), op.get("meeting_constraint"), "#b42318"),
    ]
    return [(name, p, colour) for name, p, colour in named if p]


def _marker(name: str, x: float | None, y: float | None, colour: str) -> dict[str, Any]:
    """One highlighted point (current, cost-optimal, constrained threshold)."""
    return {
        "type": "scatter",
        "mode": "markers",
        "x": [x],
        "y": [y],
        "name": name,
        "marker": {"size": 12, "color": colour, "symbol": "diamond"},
    }


def operating_figures(result: ValidationResult) -> tuple[str, str]:
    """Rates against the threshold, and the defect-decision ROC curve, with the chosen points."""
    op, sweeps = result.operating_point or {}, result.operating_sweep
    if sweeps is None or sweeps.sweep is None or not len(sweeps.sweep):
        return "null", "null"
    s = sweeps.sweep.thinned()
    rates = {k: [None if np.isnan(v) else float(v) for v in r] for k, r in s.rates().items()}
    x = s.threshold.tolist()
    lines: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "x": x, "y": rates[k], "name": name}
        for k, name in (
            ("recall", "recall (defects caught)"),
            ("precision", "precision"),
            ("false_alarm_rate", "false-alarm rate"),
        )
    ]
    roc: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines",
            "x": rates["false_alarm_rate"],
            "y": rates["recall"],
            "name": "thresholds",
            "line": {"color": "#2563eb"},
        }
    ]
    for name, p, colour in _marks(op):
        if p.get("threshold") is not None:
            lines.append(_marker(name, p["threshold"], p["recall"], colour))
        roc.append(_marker(name, p["false_alarm_rate"], p["recall"], colour))
    positive = op.get("positive", "positive")
    return (
        _fig(
            lines,
            {
                "xaxis": {"title": {"text": f"threshold on the {positive} score"}, "range": [0, 1]},
                "yaxis": {"range": [0, 1.02]},
                "height": 360,
            },
        ),
        _fig(
            roc,
            {
                "xaxis": {"title": {"text": "false-alarm rate"}, "range": [0, 1]},
                "yaxis": {"title": {"text": "recall"}, "range": [0, 1.02]},
                "height": 360,
            },
        ),
    )
