"""find_doubtful_labels: candidates for expert review, from a run's predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from assay.analysis.label_issues import find_label_issues
from assay.core.spec import ModelSpec
from assay.datasets import columns as cols
from assay.store.manifests import manifest_schema, take_column
from assay.store.predictions import read_prediction_chunks, write_doubtful_labels

SHOWN = 100


def find_doubtful_labels(
    predictions: Path, manifest: Path, spec: ModelSpec, out: Path
) -> dict[str, Any]:
    """``doubtful_labels`` for result.json; every candidate goes to ``out`` (Parquet)."""
    # Confident learning needs every judged item's probabilities at once. They are gathered into
    # arrays sized once from the file's row count (no lists to concatenate: that doubled the
    # peak), with labels as int32.
    total = pq.ParquetFile(predictions).metadata.num_rows
    y = np.empty(total, np.int32)
    p = np.empty((total, spec.n_classes), np.float64)
    row = np.empty(total, np.int64)
    n = offset = 0
    for chunk in read_prediction_chunks(predictions, spec.labels, 65_536):
        judged = np.flatnonzero(~chunk.failed & (chunk.label_index >= 0))
        y[n : n + judged.size] = chunk.label_index[judged]
        p[n : n + judged.size] = chunk.scores[judged]
        row[n : n + judged.size] = judged + offset
        n += judged.size
        offset += len(chunk.label_index)
    if n == 0:
        return {"method": None, "n_candidates": 0, "candidates": [], "note": "no judged items"}
    y, p, row = y[:n], p[:n], row[:n]
    issues = find_label_issues(y, p)
    # Columns of the candidates only (ids and paths fetched for them alone), most doubtful first.
    idx = issues.indices
    at = row[idx]
    names = np.asarray(spec.labels, dtype=object)
    has_paths = cols.PATH in manifest_schema(manifest).names
    table = {
        "item_id": take_column(predictions, "item_id", at),
        "label": names[y[idx]].tolist(),
        "model_suggests": names[np.argmax(p[idx], axis=1)].tolist() if idx.size else [],
        "model_confidence": p[idx].max(axis=1).tolist() if idx.size else [],
        "label_quality": issues.label_quality[idx].tolist(),
        "ref": take_column(manifest, cols.PATH, at) if has_paths else [None] * idx.size,
    }
    write_doubtful_labels(out, table)
    shown = [{key: values[k] for key, values in table.items()} for k in range(min(SHOWN, idx.size))]
    return {
        "method": issues.method,
        "n_judged": int(y.size),
        "n_candidates": int(idx.size),
        "candidates": shown,
        "candidates_truncated": int(idx.size) > SHOWN,
        "note": "candidates for expert review, not corrections: an expert decides",
    }
