"""Two or more finished runs side by side: their metrics with intervals, and for runs on the
same dataset version, the paired ledger against the first run (items broken and fixed, McNemar's
exact test, the accuracy change with a paired bootstrap interval), per-slice and per-class
changes, and how many items got a different answer.

The first run is the reference: every change reads "this run − reference".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from assay.core.config import ValidationConfig
from assay.core.errors import InputError
from assay.core.intervals import (
    IntervalConfig,
    draw_multinomial,
    percentile_interval,
    wilson_interval,
)
from assay.core.metric_catalog import METRICS
from assay.core.records import RunRecord
from assay.core.results import ValidationResult
from assay.core.stattests import mcnemar_exact
from assay.reports.html import HEADLINE, TASK_TILES
from assay.reports.json import read_result_json
from assay.services import run_tables
from assay.services.runs import get_run, run_row
from assay.services.workspace import Workspace
from assay.store.manifests import slice_mask

MAX_RUNS = 8


def _metric_order(results: list[ValidationResult]) -> list[str]:
    """Every headline metric any of the runs has, the task's own first."""
    tasks = {str((r.task or {}).get("name") or "") for r in results}
    keys = [k for task in sorted(tasks) for k in TASK_TILES.get(task, [])] + HEADLINE
    return [k for k in dict.fromkeys(keys) if any(k in r.metrics for r in results)]


def _value(r: ValidationResult, key: str, label: str | None = None) -> dict[str, Any] | None:
    """A metric of ``r`` with its interval (of class ``label``'s when given); None if absent."""
    m = r.metrics.get(key) if label is None else r.per_class.get(label, {}).get(key)
    if m is None:
        return None
    return {"value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high}


def _flags(values: Any) -> np.ndarray:
    """A boolean Arrow column as numpy, null as False."""
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _paired(reference: Path, other: Path, config: ValidationConfig) -> dict[str, Any]:
    """The ledger of two runs on the same items (row for row): the outcome counts, McNemar's
    exact p, the accuracy change with a paired bootstrap interval, and how many answers differ."""
    a = run_tables.columns(reference / "predictions.parquet", ["predicted", "correct"])
    b = run_tables.columns(other / "predictions.parquet", ["predicted", "correct"])
    ca, cb = a.column("correct"), b.column("correct")
    valid = _flags(pc.and_(ca.is_valid(), cb.is_valid()))
    ra, rb = _flags(ca)[valid], _flags(cb)[valid]
    counts = np.array(
        [
            int((ra & rb).sum()),  # both right
            int((ra & ~rb).sum()),  # broken: the reference was right, this run is wrong
            int((~ra & rb).sum()),  # fixed
            int((~ra & ~rb).sum()),  # both wrong
        ]
    )
    n = int(counts.sum())
    differ = int((_flags(pc.not_equal(a.column("predicted"), b.column("predicted"))) & valid).sum())
    delta = (counts[2] - counts[1]) / n if n else None
    low = high = None
    if n:
        draws = draw_multinomial(
            counts,
            IntervalConfig(config.confidence, config.n_resamples, config.seed),
            "side_by_side",
        )
        low, high = percentile_interval((draws[:, 2] - draws[:, 1]) / n, config.confidence)
    return {
        "n_items": n,
        "n_both_right": int(counts[0]),
        "n_broken": int(counts[1]),
        "n_fixed": int(counts[2]),
        "n_both_wrong": int(counts[3]),
        "n_differ": differ,
        "mcnemar_p": mcnemar_exact(int(counts[1]), int(counts[2])) if n else None,
        "accuracy_delta": {"value": delta, "ci_low": low, "ci_high": high},
    }


def _slice_accuracy(
    ws: Workspace, record: RunRecord, predicates: list[dict[str, str]], confidence: float
) -> dict[str, Any] | None:
    """Accuracy (Wilson interval) of a run's judged items in a slice it did not report."""
    manifest = Path(ws.catalog.get_dataset_by_id(record.dataset_id).manifest_path)
    try:
        inside = slice_mask(manifest, [(p["column"], p["value"]) for p in predicates])
    except InputError:  # the slice does not exist in this run's dataset
        return None
    correct = run_tables.columns(Path(record.run_dir) / "predictions.parquet", ["correct"])
    values = correct.column("correct")
    judged = inside & _flags(values.is_valid())
    n = int(judged.sum())
    right = int((_flags(values) & judged).sum())
    low, high = wilson_interval(right, n, confidence) if n else (None, None)
    # Counted as the report counts a slice: its judged items.
    return {
        "n_items": n,
        "accuracy": {"value": right / n if n else None, "ci_low": low, "ci_high": high},
    }


def side_by_side(ws: Workspace, run_ids: list[str]) -> dict[str, Any]:
    """The comparison of ``run_ids`` (2 to 8 finished runs, the first the reference). Finished
    runs never change: the numbers are computed once per server process and kept; only the
    runs' own rows (their tags and notes may change) are read again."""
    given = [i.strip() for i in run_ids if i.strip()]
    ids = list(dict.fromkeys(given))
    if not 2 <= len(ids) <= MAX_RUNS or len(ids) != len(given):
        raise InputError(f"compare 2 to {MAX_RUNS} different runs (given: {len(given)})")
    records = [get_run(ws, i) for i in ids]
    if len({r.id for r in records}) != len(records):
        raise InputError("the same run is named twice")
    for r in records:
        if r.status != "finished":
            raise InputError(f"run {r.id[:12]} is {r.status}: only finished runs compare")
        run_tables.verified(r)
    key = tuple(
        (r.id, run_tables.identity(Path(r.run_dir) / "predictions.parquet")) for r in records
    )
    found = run_tables.kept(("side_by_side", key), lambda: _numbers(ws, records))
    return {"runs": [run_row(ws, r.id).to_dict() for r in records]} | found


def _numbers(ws: Workspace, records: list[RunRecord]) -> dict[str, Any]:
    results = [read_result_json(Path(r.run_dir) / "result.json") for r in records]
    reference, ref_result = records[0], results[0]
    config = ValidationConfig.from_dict(dict(ref_result.config))
    metrics = [
        {
            "key": key,
            "title": METRICS[key].title,
            "better": METRICS[key].better,
            "values": [_value(r, key) for r in results],
        }
        for key in _metric_order(results)
    ]
    pairs = []
    for record, result in zip(records[1:], results[1:], strict=True):
        if record.dataset_id != reference.dataset_id:
            pairs.append(
                {
                    "run": record.id,
                    "paired": False,
                    "note": f"on {result.dataset.name}@{result.dataset.number}, the reference on "
                    f"{ref_result.dataset.name}@{ref_result.dataset.number}: different items, "
                    "so no paired comparison",
                }
            )
            continue
        if set(result.labels) != set(ref_result.labels):
            pairs.append({"run": record.id, "paired": False, "note": "different classes"})
            continue
        pair: dict[str, Any] = {"run": record.id, "paired": True} | _paired(
            Path(reference.run_dir), Path(record.run_dir), config
        )
        recorded = result.comparison or {}
        if recorded.get("baseline", {}).get("run_id") == reference.id:
            # This pair is the validation's own comparison: its recorded numbers, one record.
            delta = recorded.get("deltas", {}).get("accuracy") or {}
            pair["accuracy_delta"] = {
                "value": delta.get("delta", pair["accuracy_delta"]["value"]),
                "ci_low": delta.get("ci_low"),
                "ci_high": delta.get("ci_high"),
            }
            pair["mcnemar_p"] = (recorded.get("mcnemar") or {}).get("p_value", pair["mcnemar_p"])
            pair["recorded"] = True
        pairs.append(pair)
    named: dict[str, list[dict[str, str]] | None] = {}
    for res in results:
        for s in res.slices:
            if named.get(s["slice"]) is None:
                named[s["slice"]] = s.get("predicates")
    slices = []
    for name, predicates in named.items():
        row: list[dict[str, Any] | None] = []
        for record, res in zip(records, results, strict=True):
            found = next((s for s in res.slices if s["slice"] == name), None)
            if found is not None:
                acc = found.get("metrics", {}).get("accuracy")
                row.append({"n_items": found["n_items"], "accuracy": acc})
            elif predicates:  # this run did not report the slice: count it from its items
                row.append(_slice_accuracy(ws, record, predicates, config.confidence))
            else:
                row.append(None)
        slices.append({"slice": name, "values": row})
    labels = list(dict.fromkeys(label for res in results for label in res.labels))
    per_class = [
        {
            "label": label,
            "values": [
                {k: _value(res, k, label) for k in ("recall", "precision", "f1")} for res in results
            ],
        }
        for label in labels
    ]
    return {
        "reference": reference.id,
        "headline": [res.headline()[0] for res in results],
        "confidence": config.confidence,
        "metrics": metrics,
        "pairs": pairs,
        "slices": slices,
        "per_class": per_class,
    }
