"""What the report draws over the images of detection, segmentation and anomaly runs.

Every example the report shows (misclassified items, broken and fixed ones, doubtful labels,
error groups) gets an ``overlay``: the experts' boxes or mask and the model's, read from the
manifest and from the run's predictions. The report then draws both, in two colours, over the
thumbnail, from ``result.json`` alone.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.core.results import ValidationResult
from assay.datasets import columns as cols
from assay.datasets.boxes import BOXES
from assay.store.manifests import take_values


def _examples(result: ValidationResult) -> list[dict[str, Any]]:
    out = list(result.error_examples)
    comparison = result.comparison or {}
    out += comparison.get("broken_examples", []) + comparison.get("fixed_examples", [])
    out += (comparison.get("score_differences") or {}).get("flipped_examples", [])
    out += (result.doubtful_labels or {}).get("candidates", [])
    for group in (result.error_groups or {}).get("groups", []):
        out += group.get("examples", [])
    return out


def _rows(
    path: Path, id_column: str, ids: list[str], columns: list[str]
) -> dict[str, dict[str, Any]]:
    """The rows of ``ids``, reading only ``columns`` (and only the row groups that hold them)."""
    present = [c for c in columns if c in pq.read_schema(path).names]
    if not present:
        return {}
    table = pq.read_table(
        path, columns=[id_column, *present], filters=pc.field(id_column).isin(pa.array(ids))
    )
    return {row.pop(id_column): row for row in table.to_pylist()}


WEAK_BOXES = 5


def _overlay(
    task: str,
    result: ValidationResult,
    model: dict[str, Any],
    truth: dict[str, Any],
) -> dict[str, Any]:
    """What to draw over one item: the experts' boxes or mask, and the model's."""
    overlay: dict[str, Any] = {}
    if task == "detection":
        threshold = (result.task or {}).get("object_confusion", {}).get("score_threshold", 0.5)
        overlay["expert_boxes"] = [
            [b["x"], b["y"], b["width"], b["height"]] for b in truth.get(BOXES) or []
        ]
        boxes = model.get("boxes") or []
        overlay["model_boxes"] = [
            [b["x"], b["y"], b["width"], b["height"], b["score"]]
            for b in boxes
            if b["score"] >= threshold
        ]
        # The model's best boxes under the threshold, drawn thin: where it did look, when its
        # confident boxes missed an object (a miss by a hair of score, or nothing near it).
        weak = sorted((b for b in boxes if b["score"] < threshold), key=lambda b: -b["score"])
        overlay["weak_boxes"] = [
            [b["x"], b["y"], b["width"], b["height"], b["score"]] for b in weak[:WEAK_BOXES]
        ]
        return overlay
    spec = result.config.get("model_spec", {})
    labels = list(spec.get("labels", []))
    negative = spec.get("negative")
    overlay["background"] = (
        labels.index(negative) if task == "segmentation" and negative in labels else 0
    )
    overlay["expert_mask"] = truth.get(cols.MASK)
    if model.get("anomaly_score") is not None:
        overlay["anomaly_score"] = model["anomaly_score"]
    if model.get("mask") is not None:
        overlay["model_mask"] = base64.b64encode(model["mask"]).decode()
    return overlay


def row_overlay(
    result: ValidationResult, run_dir: Path, manifest: Path, row: int
) -> dict[str, Any] | None:
    """The overlay of the item at ``row`` (the manifest's and the predictions' rows agree);
    None for a run that draws nothing (classification)."""
    task = str((result.task or {}).get("name") or "")
    if task not in ("detection", "segmentation", "anomaly"):
        return None
    rows = np.array([row])
    predictions = run_dir / "predictions.parquet"
    model = {
        c: take_values(predictions, c, rows)[0].as_py()
        for c in ("boxes", "mask", "anomaly_score")
        if c in pq.read_schema(predictions).names
    }
    names = pq.read_schema(manifest).names
    truth = {c: take_values(manifest, c, rows)[0].as_py() for c in (BOXES, cols.MASK) if c in names}
    return _overlay(task, result, model, truth)


def add_overlays(result: ValidationResult, run_dir: Path, manifest: Path) -> ValidationResult:
    """The result with an ``overlay`` on every example of a vision task's run."""
    task = (result.task or {}).get("name")
    if task not in ("detection", "segmentation", "anomaly"):
        return result
    examples = _examples(result)
    ids = sorted({str(ex["item_id"]) for ex in examples})
    if not ids:
        return result
    predicted = _rows(
        run_dir / "predictions.parquet", "item_id", ids, ["boxes", "mask", "anomaly_score"]
    )
    expert = _rows(manifest, cols.ITEM_ID, ids, [BOXES, cols.MASK])
    for ex in examples:
        item = str(ex["item_id"])
        ex["overlay"] = _overlay(task, result, predicted.get(item, {}), expert.get(item, {}))
    return replace(result)
