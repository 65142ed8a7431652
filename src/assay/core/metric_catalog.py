"""The metric catalog: every number Assay reports, once, with its title, what it means, which way
is better and its range.

Reports, the CLI, the web app, policies and comparisons read these entries instead of keeping
their own lists (which had drifted: "lower is better" was known to policies but not to the page
that compares runs). Which metrics a view shows, and in which order, stays the view's choice; what
a metric *is* lives here. A name with a class or slice suffix (``recall[scratch]``) is the entry
of its base name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class MetricInfo:
    name: str
    title: str
    better: Better = "higher"
    # The range a value can take; (0, inf) for counts, times and sizes.
    bounds: tuple[float, float] = (0.0, 1.0)
    # One sentence for the reader of a report, where the title does not say it all.
    note: str = ""
    # Also reported per class (``metric[class]``).
    per_class: bool = False


UNBOUNDED = (0.0, math.inf)
# Log loss clips probabilities at float64's eps, as scikit-learn does: no item costs more than
# -log(eps), so a limit past it (log_loss <= 1e300) could never fail (a review).
LOG_LOSS_MAX = -math.log(2.0**-52)

CLASSIFICATION = (
    MetricInfo(
        "accuracy",
        "Accuracy",
        note="share of judged items whose predicted class equals the expert label",
    ),
    MetricInfo(
        "balanced_accuracy",
        "Balanced accuracy",
        note="mean recall over classes; robust to class imbalance",
    ),
    MetricInfo("macro_f1", "Macro F1", note="unweighted mean of per-class F1"),
    MetricInfo("weighted_f1", "Weighted F1", note="per-class F1 weighted by support"),
    MetricInfo("macro_precision", "Macro precision"),
    MetricInfo("macro_recall", "Macro recall"),
    MetricInfo("weighted_precision", "Weighted precision"),
    MetricInfo("weighted_recall", "Weighted recall"),
    MetricInfo("mcc", "Matthews correlation", bounds=(-1.0, 1.0), note="-1..1; 0 is chance level"),
    MetricInfo(
        "cohen_kappa",
        "Cohen's kappa (model vs experts)",
        bounds=(-1.0, 1.0),
        note="agreement beyond chance",
    ),
    MetricInfo("precision", "Precision", per_class=True),
    MetricInfo("recall", "Recall", per_class=True),
    MetricInfo("f1", "F1", per_class=True),
    MetricInfo(
        "false_alarm_rate",
        "False-alarm rate",
        "lower",
        note="good items called defective at the threshold: a line stopped for nothing",
    ),
    MetricInfo(
        "missed_defect_rate",
        "Missed-defect rate",
        "lower",
        note="defective items passed as good: what reaches the customer",
    ),
    MetricInfo(
        "roc_auc",
        "ROC-AUC",
        note="ranking quality; one-vs-rest macro average for several classes",
        per_class=True,
    ),
    MetricInfo("pr_auc", "PR-AUC (average precision)", per_class=True),
    MetricInfo("log_loss", "Log loss", "lower", (0.0, LOG_LOSS_MAX), "lower is better"),
    MetricInfo("brier_score", "Brier score", "lower", (0.0, 2.0), "lower is better"),
    MetricInfo(
        "ece",
        "Expected calibration error",
        "lower",
        note="lower is better; gap between confidence and accuracy",
    ),
)

DETECTION = (
    MetricInfo("map", "mAP @[.50:.95]", note="COCO protocol, as pycocotools computes it"),
    MetricInfo("map_50", "AP50"),
    MetricInfo("map_75", "AP75"),
    MetricInfo("map_small", "AP small", note="boxes under 32² px"),
    MetricInfo("map_medium", "AP medium", note="32² to 96² px"),
    MetricInfo("map_large", "AP large", note="over 96² px"),
    MetricInfo("mar_1", "AR@1"),
    MetricInfo("mar_10", "AR@10"),
    MetricInfo("mar_100", "AR@100"),
    MetricInfo("mar_small", "AR small"),
    MetricInfo("mar_medium", "AR medium"),
    MetricInfo("mar_large", "AR large"),
    MetricInfo("ap", "AP", per_class=True),
    MetricInfo("ap_50", "AP50", per_class=True),
    MetricInfo("ar_100", "AR@100", per_class=True),
)

SEGMENTATION = (
    MetricInfo("mean_iou", "Mean IoU", note="over the classes present"),
    MetricInfo("pixel_accuracy", "Pixel accuracy"),
    MetricInfo("boundary_f1", "Boundary F1", note="edges within the stated tolerance"),
    MetricInfo("iou", "IoU", per_class=True),
    MetricInfo("dice", "Dice", per_class=True),
)

ANOMALY = (
    MetricInfo("image_auroc", "Image AUROC"),
    MetricInfo("image_aupr", "Image AUPR"),
    MetricInfo("f1_max", "F1-max", note="best F1 over every threshold"),
    MetricInfo("pixel_auroc", "Pixel AUROC"),
    MetricInfo("aupro", "AUPRO (FPR ≤ 0.3)", note="per-region overlap, MVTec AD protocol"),
    MetricInfo(
        "region_recall", "Region recall", note="defect regions at least half above the threshold"
    ),
)

PROFILE = (
    MetricInfo("latency_p50_ms", "Latency p50 (ms)", "lower", UNBOUNDED),
    MetricInfo("latency_p95_ms", "Latency p95 (ms)", "lower", UNBOUNDED),
    MetricInfo("latency_p99_ms", "Latency p99 (ms)", "lower", UNBOUNDED),
    MetricInfo("throughput_items_per_s", "Throughput (items/s)", "higher", UNBOUNDED),
    MetricInfo("peak_memory_mb", "Peak memory (MiB)", "lower", UNBOUNDED),
    MetricInfo("load_time_s", "Load time (s)", "lower", UNBOUNDED),
    MetricInfo("model_size_mb", "Model size (MiB)", "lower", UNBOUNDED),
)

# How far the candidate's answers are from the baseline's, item by item (export equivalence).
EQUIVALENCE = (
    # Scores need not be probabilities (an anomaly score, a logit): unbounded.
    MetricInfo(
        "max_abs_score_diff", "Largest score difference", "lower", UNBOUNDED, per_class=True
    ),
    MetricInfo(
        "p99_abs_score_diff",
        "99th percentile score difference",
        "lower",
        UNBOUNDED,
        per_class=True,
    ),
    MetricInfo("decision_flips", "Decisions that differ", "lower", UNBOUNDED),
    MetricInfo("flip_rate", "Share of decisions that differ", "lower"),
)

# The data audits given with a validation (--train, --production).
AUDIT = (
    MetricInfo("leaked_items", "Items leaked from training", "lower", UNBOUNDED),
    MetricInfo(
        "domain_auc",
        "Domain classifier AUC",
        "lower",
        (0.0, 1.0),
        "0.5: production and validation cannot be told apart",
    ),
    MetricInfo("max_psi", "Largest population stability index", "lower", UNBOUNDED),
)

METRICS: Mapping[str, MetricInfo] = {
    m.name: m
    for group in (CLASSIFICATION, DETECTION, SEGMENTATION, ANOMALY, PROFILE, EQUIVALENCE, AUDIT)
    for m in group
}


# What the model's answers on a sample estimate (an interval says how well), as opposed to what
# is measured or counted outright (latency, leaked items, the largest score difference).
ESTIMATES = frozenset(m.name for g in (CLASSIFICATION, DETECTION, SEGMENTATION, ANOMALY) for m in g)


def is_estimate(metric: str) -> bool:
    return base_name(metric) in ESTIMATES


def base_name(metric: str) -> str:
    """``recall`` of ``recall[scratch]``."""
    return metric.split("[", 1)[0]


def metric_info(metric: str) -> MetricInfo:
    """The entry of ``metric`` (or of its base name); KeyError for a name Assay does not report."""
    return METRICS[base_name(metric)]


def lower_is_better(metric: str) -> bool:
    info = METRICS.get(base_name(metric))
    return info is not None and info.better == "lower"


def title(metric: str) -> str:
    """The metric's title, with its class or slice suffix kept (the name itself when unknown)."""
    info = METRICS.get(base_name(metric))
    if info is None:
        return metric
    suffix = metric[len(base_name(metric)) :]
    return info.title + (f" {suffix}" if suffix else "")
