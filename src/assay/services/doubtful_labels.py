"""find_doubtful_labels: candidates for expert review, from a run's predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from assay.analysis.label_issues import find_label_issues
from assay.core.spec import ModelSpec
from assay.datasets import columns as cols
from assay.store.manifests import manifest_schema, read_column
from assay.store.predictions import read_prediction_chunks, write_doubtful_labels

SHOWN = 100


def find_doubtful_labels(
    predictions: Path, manifest: Path, spec: ModelSpec, out: Path
) -> dict[str, Any]:
    """``doubtful_labels`` for result.json; every candidate goes to ``out`` (Parquet)."""
    ids: list[str] = []
    labels, probs, rows = [], [], []
    offset = 0
    for chunk in read_prediction_chunks(predictions, spec.labels, 65_536):
        judged = np.flatnonzero(~chunk.failed & (chunk.label_index >= 0))
        ids += [chunk.item_ids[i] for i in judged]
        labels.append(chunk.label_index[judged])
        probs.append(chunk.scores[judged])
        rows.append(judged + offset)
        offset += len(chunk.item_ids)
    if not ids:
        return {"method": None, "n_candidates": 0, "candidates": [], "note": "no judged items"}
    y = np.concatenate(labels)
    p = np.concatenate(probs)
    row = np.concatenate(rows)
    issues = find_label_issues(y, p)
    refs = (
        read_column(manifest, cols.PATH) if cols.PATH in manifest_schema(manifest).names else None
    )
    candidates = [
        {
            "item_id": ids[i],
            "label": spec.labels[int(y[i])],
            "model_suggests": spec.labels[int(np.argmax(p[i]))],
            "model_confidence": float(np.max(p[i])),
            "label_quality": float(issues.label_quality[i]),
            "ref": None if refs is None else refs[int(row[i])],
        }
        for i in issues.indices.tolist()
    ]
    write_doubtful_labels(out, candidates)
    return {
        "method": issues.method,
        "n_judged": int(y.size),
        "n_candidates": len(candidates),
        "candidates": candidates[:SHOWN],
        "candidates_truncated": len(candidates) > SHOWN,
        "note": "candidates for expert review, not corrections: an expert decides",
    }
