"""report.html: one self-contained file (plotly.js and thumbnails inlined) that opens offline."""

from __future__ import annotations

import contextlib
import pickle
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, select_autoescape
from jinja2.bccache import Bucket

from assay.core.metric_catalog import METRICS
from assay.core.metric_value import MetricValue
from assay.core.results import ValidationResult
from assay.core.tasks.detection.mean_ap import COCO_SUMMARY
from assay.reports.figures import (
    confusion_diff_figure,
    confusion_figure,
    curve_figure,
    detection_pr_figure,
    operating_figures,
    reliability_figure,
)
from assay.reports.thumbnails import thumbnails
from assay.reports.views.verdict import delta_rows, improved, limit_text, value_text

# The tiles of the report's headline, in order (titles and notes: the metric catalog).
HEADLINE = [
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "weighted_f1",
    "macro_precision",
    "macro_recall",
    "mcc",
    "cohen_kappa",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier_score",
    "ece",
]
PER_CLASS = ["precision", "recall", "f1", "roc_auc", "pr_auc"]
# The task's own numbers: the headline tiles, before the item-level decision's.
TASK_TILES = {
    # COCO's summary but AR by object size, which the per-size AP tiles already cover.
    "detection": [m for m in COCO_SUMMARY if m not in ("mar_small", "mar_medium", "mar_large")],
    "segmentation": ["mean_iou", "pixel_accuracy", "boundary_f1"],
    "anomaly": [
        "image_auroc",
        "image_aupr",
        "f1_max",
        "false_alarm_rate",
        "missed_defect_rate",
        "pixel_auroc",
        "aupro",
        "region_recall",
    ],
}
TASK_PER_CLASS = {
    "detection": ["ap", "ap_50", "ar_100"],
    "segmentation": ["iou", "dice", "boundary_f1"],
    "anomaly": [],
}


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


class _CompiledTemplates(FileSystemBytecodeCache):
    """Jinja's compiled templates kept between processes (compiling the report's templates
    costs about 0.45 s per run). In Jinja's own per-user folder, which it creates mode 0700 and
    refuses when another user owns it; a cache that cannot be read or written is skipped, never
    a reason for a report to fail."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError):
            bucket.reset()  # damaged (Jinja reads its checksum with pickle): compile again

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):  # a full disk or a vanished folder: no cache
            super().dump_bytecode(bucket)


def _bytecode_cache() -> FileSystemBytecodeCache | None:
    try:
        return _CompiledTemplates()
    except (OSError, RuntimeError):  # no safe per-user folder: compile every time
        return None


def template_environment() -> Environment:
    """The reports' Jinja environment (templates, filters), shared by every rendered file."""
    return _env()


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("assay.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["num"] = _num
    env.filters["pvalue"] = pvalue
    env.filters["interval"] = _interval
    env.filters["signed"] = lambda v: "—" if v is None else f"{v:+.4f}"
    env.filters["slice_text"] = lambda predicates: " and ".join(
        f"{p['column']} in {p['value']}"
        if p["value"].startswith("[")
        else f"{p['column']} = {p['value']}"
        for p in predicates
    )
    return env


def pvalue(p: float | None, relation: bool = False) -> str:
    """A p- or q-value for people: "< 1e-4" below that (a McNemar p of 3e-106 is not 0.0000),
    else two significant digits; ``relation`` prefixes "= " to the number."""
    if p is None:
        return "—"
    if p < 1e-4:
        return "< 1e-4"
    text = f"{p:.2g}" if p < 0.01 else f"{p:.3f}"
    return f"= {text}" if relation else text


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}"


def _interval(m: MetricValue | None) -> str:
    if m is None or m.ci_low is None or m.ci_high is None:
        return ""
    return f"[{m.ci_low:.4f}, {m.ci_high:.4f}]"


def _gallery(
    result: ValidationResult, examples: list[dict[str, Any]], counts: list[list[int]] | None
) -> list[dict[str, Any]]:
    """Examples grouped by (expert, predicted), biggest groups first, with thumbnails for images."""
    index = {label: i for i, label in enumerate(result.labels)}
    is_image = result.dataset_kind == "image"
    thumbs = (
        thumbnails(
            [ex.get("ref") for ex in examples], overlays=[ex.get("overlay") for ex in examples]
        )
        if is_image
        else []
    )
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault((ex["label"], ex["predicted"]), []).append(
            ex | {"thumb": thumbs[i] if is_image else None}
        )
    out = [
        {
            "label": label,
            "predicted": predicted,
            "total": counts[index[label]][index[predicted]] if counts is not None else len(members),
            "examples": members,
        }
        for (label, predicted), members in groups.items()
    ]
    return sorted(out, key=lambda g: -g["total"])


def render_html(result: ValidationResult) -> str:
    """The full report of one validation run: one file that opens offline."""
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            **_context(result),
            plotly_js=_plotly_js(),
            explore=None,
            review=None,
            static_tables=False,
        )
    )


def render_sections(
    result: ValidationResult,
    explore: str | None,
    review: str | None,
    static_tables: bool = False,
) -> str:
    """The report's sections alone, as the web app's run page shows them (inside an element of
    class ``report``, with report.css and report.js served beside it): the same template, so the
    page and the file cannot drift apart. ``explore`` is the URL of the run's item explorer,
    where each count, slice and group links to its items; ``review`` that of the label review;
    ``static_tables``: tables instead of the figures that can be (a notebook draws no plotly)."""
    return (
        _env()
        .get_template("report_sections.html.j2")
        .render(**_context(result), explore=explore, review=review, static_tables=static_tables)
    )


def report_asset(name: str) -> str:
    """report.css or report.js, which the web app serves as files."""
    if name not in ("report.css", "report.js"):
        raise ValueError(name)
    loader = _env().loader
    assert loader is not None
    return loader.get_source(_env(), name)[0]


def template_digest() -> str:
    """SHA-256 over the report's templates and this module: what a rendering depends on."""
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted((Path(__file__).parent / "templates").iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def plotly_js() -> str:
    """plotly.js, bundled with the plotly package (no CDN)."""
    return _plotly_js()


def _tile(key: str, result: ValidationResult) -> tuple[str, str, str, MetricValue | None]:
    """(key, title, note, value) of a headline tile."""
    info = METRICS[key]
    return key, info.title, info.note, result.metrics.get(key)


def _context(result: ValidationResult) -> dict[str, Any]:
    comp = result.comparison or {}
    operating = operating_figures(result)
    doubtful = (result.doubtful_labels or {}).get("candidates", [])
    doubtful_thumbs = (
        thumbnails([c.get("ref") for c in doubtful], overlays=[c.get("overlay") for c in doubtful])
        if result.dataset_kind == "image"
        else []
    )
    n_errors = sum(
        c for i, row in enumerate(result.confusion_matrix) for j, c in enumerate(row) if i != j
    )
    error_groups = [
        g
        | {
            "thumbs": thumbnails(
                [ex.get("ref") for ex in g["examples"]],
                overlays=[ex.get("overlay") for ex in g["examples"]],
            )
            if result.dataset_kind == "image"
            else []
        }
        for g in (result.error_groups or {}).get("groups", [])
    ]
    task = str((result.task or {}).get("name") or "")

    def score_caption(ex: dict[str, Any]) -> str:
        """What the number under a gallery image means: the predicted class's probability, or
        for a vision task the image's own score (best box, defect pixels, anomaly score)."""
        confidence = ex.get("confidence")
        if confidence is None:
            return ""
        raw = (ex.get("overlay") or {}).get("anomaly_score")
        if task == "anomaly" and raw is not None:
            return f"anomaly score {raw:.4g}"
        if task in ("detection", "segmentation", "anomaly") and len(result.labels) == 2:
            # The item-level prediction is a rule, not the argmax: show the defect score.
            defect = confidence if ex.get("predicted") == result.labels[1] else 1 - confidence
            what = {"detection": "best box", "segmentation": "defect pixel"}.get(task, "defect")
            return f"{what} score {_num(defect, 3)}"
        return f"confidence {_num(confidence, 3)}"

    task_tiles = [_tile(key, result) for key in TASK_TILES.get(task, [])]
    task_columns = TASK_PER_CLASS.get(task, [])
    task_classes = [
        label
        for label, values in result.per_class.items()
        if task_columns and any(k in values for k in task_columns)
    ]
    return {
        "r": result,
        "task": task,
        "score_caption": score_caption,
        "task_tiles": task_tiles,
        "task_columns": task_columns,
        "task_classes": task_classes,
        "headline": [_tile(key, result) for key in HEADLINE],
        "per_class_keys": PER_CLASS,
        "n_errors": n_errors,
        "gallery": _gallery(result, result.error_examples, result.confusion_matrix),
        "doubtful_thumbs": doubtful_thumbs,
        "error_groups": error_groups,
        # Failures first, then what could not be told, warnings, and passes.
        "checks": sorted(
            (
                c | {"value_text": value_text(c), "limit_text": limit_text(c)}
                for c in (
                    [] if result.verdict is None else [k.to_dict() for k in result.verdict.checks]
                )
            ),
            key=lambda c: {"fail": 0, "too_few": 1, "warn": 2}.get(c["status"], 3),
        ),
        "broken": _gallery(result, comp.get("broken_examples", []), None),
        "fixed": _gallery(result, comp.get("fixed_examples", []), None),
        "flipped": _gallery(
            result, (comp.get("score_differences") or {}).get("flipped_examples", []), None
        ),
        "comparison_rows": [
            (
                name,
                d,
                {True: "better", False: "worse", None: ""}[
                    improved(name, d["ci_low"], d["ci_high"])
                ],
            )
            for name in delta_rows(task)
            if (d := comp.get("deltas", {}).get(name))
        ],
        "has_curves": any(
            (c.get("roc") or {}).get("fpr") or (c.get("pr") or {}).get("recall")
            for c in result.curves.values()
        ),
        "has_reliability": any(b.get("n_items") for b in result.reliability),
        "figures": {
            "confusion": confusion_figure(result),
            "reliability": reliability_figure(result),
            "roc": curve_figure(result, "roc"),
            "pr": curve_figure(result, "pr"),
            "confusion_diff": confusion_diff_figure(result) if result.comparison else "null",
            "detection_pr": detection_pr_figure(result) if task == "detection" else "null",
            "operating": operating[0],
            "operating_roc": operating[1],
        },
    }
