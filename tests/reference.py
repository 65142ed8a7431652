"""scikit-learn's numbers for a set of predictions: the reference every Assay metric is held to."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm


def sklearn_metrics(
    y: np.ndarray, scores: np.ndarray, pred: np.ndarray, n_classes: int, positive: int | None
) -> dict[str, Any]:
    """Headline metrics as scikit-learn computes them on the same predictions."""
    out: dict[str, Any] = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "mcc": skm.matthews_corrcoef(y, pred),
        "cohen_kappa": skm.cohen_kappa_score(y, pred),
        "log_loss": skm.log_loss(y, scores, labels=list(range(n_classes))),
        "brier_score": skm.brier_score_loss(y, scores, labels=list(range(n_classes)))
        if n_classes > 2
        else skm.brier_score_loss(y == 1, scores[:, 1]),
    }
    for avg in ("macro", "weighted"):
        out[f"{avg}_precision"] = skm.precision_score(y, pred, average=avg, zero_division=0)
        out[f"{avg}_recall"] = skm.recall_score(y, pred, average=avg, zero_division=0)
        out[f"{avg}_f1"] = skm.f1_score(y, pred, average=avg, zero_division=0)
    if positive is not None:
        out["roc_auc"] = skm.roc_auc_score(y == positive, scores[:, positive])
        out["pr_auc"] = skm.average_precision_score(y == positive, scores[:, positive])
    else:
        out["roc_auc"] = skm.roc_auc_score(
            y, scores, multi_class="ovr", labels=list(range(n_classes))
        )
        onehot = np.eye(n_classes)[y]
        out["pr_auc"] = skm.average_precision_score(onehot, scores, average="macro")
    labels = list(range(n_classes))
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=np.nan)
    out["per_class"] = {
        k: {"precision": p[k], "recall": r[k], "f1": f[k], "support": s[k]} for k in labels
    }
    out["confusion_matrix"] = skm.confusion_matrix(y, pred, labels=labels).tolist()
    return out


def assert_matches_sklearn(
    result: dict[str, Any], reference: dict[str, Any], labels: list[str], tol: float = 1e-9
) -> None:
    """Compare a result.json-style metrics dict with ``sklearn_metrics``."""
    metrics = result["metrics"]
    for key, expected in reference.items():
        if key in ("per_class", "confusion_matrix"):
            continue
        got = metrics[key]["value"]
        assert got is not None, key
        assert abs(got - expected) <= tol, f"{key}: assay {got} vs scikit-learn {expected}"
    assert result["confusion_matrix"] == reference["confusion_matrix"]
    for k, label in enumerate(labels):
        for key, expected in reference["per_class"][k].items():
            got = metrics["per_class"][label][key]["value"]
            if np.isnan(expected):
                assert got is None, (label, key)
            else:
                assert abs(got - expected) <= tol, (
                    f"{label}.{key}: assay {got} vs scikit-learn {expected}"
                )
