"""find_doubtful_labels: candidates for expert review, from a run's predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from assay.analysis.label_issues import ConfidentLearning
from assay.core.spec import ModelSpec
from assay.datasets import columns as cols
from assay.store.manifests import manifest_schema, take_values
from assay.store.predictions import read_prediction_chunks, write_doubtful_labels

SHOWN = 100


def find_doubtful_labels(
    predictions: Path, manifest: Path, spec: ModelSpec, out: Path
) -> dict[str, Any]:
    """``doubtful_labels`` for result.json; every candidate goes to ``out`` (Parquet).

    Confident learning reads the judged items' probabilities in passes (four, five when a class
    has no item), holding counts and the candidates only."""
    search = ConfidentLearning(spec.n_classes)
    while not search.done:
        offset = 0
        for chunk in read_prediction_chunks(predictions, spec.labels, 65_536, ids=False):
            judged = np.flatnonzero(~chunk.failed & (chunk.label_index >= 0))
            search.update(judged + offset, chunk.label_index[judged], chunk.scores[judged])
            offset += len(chunk.label_index)
        search.end_pass()
    issues = search.result
    assert issues is not None
    if search.n_items == 0:
        return {"method": None, "n_candidates": 0, "candidates": [], "note": "no judged items"}
    # Columns of the candidates only (ids and paths fetched for them alone), most doubtful first,
    # as Arrow arrays: a million candidates as Python objects took ~600 bytes each.
    at = issues.rows
    names = np.asarray(spec.labels)
    has_paths = cols.PATH in manifest_schema(manifest).names
    table = {
        "item_id": take_values(predictions, "item_id", at),
        "label": pa.array(names[issues.labels]),
        "model_suggests": pa.array(names[issues.suggested]),
        "model_confidence": pa.array(issues.confidence),
        "label_quality": pa.array(issues.quality),
        "ref": take_values(manifest, cols.PATH, at)
        if has_paths
        else pa.nulls(at.size, pa.string()),
    }
    write_doubtful_labels(out, table)
    top = {key: values.slice(0, SHOWN).to_pylist() for key, values in table.items()}
    shown = [{key: values[k] for key, values in top.items()} for k in range(min(SHOWN, at.size))]
    return {
        "method": issues.method,
        "n_judged": search.n_items,
        "n_candidates": int(at.size),
        "candidates": shown,
        "candidates_truncated": int(at.size) > SHOWN,
        "note": "candidates for expert review, not corrections: an expert decides",
    }
