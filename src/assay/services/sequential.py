"""A release decided as labels trickle in: the anytime-valid comparison of two finished runs on
the same dataset version (see ``assay.core.sequential``).

The items are taken in the order their labels came in (a manifest column such as
``labelled_at``; items without a value there are not labelled yet and wait), else in the
manifest's order. Each new dataset version with more labels is validated (cheaply: incremental
validation reuses the outputs of the earlier items) and compared again; the confidence sequence
keeps its level over all these looks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.core.errors import InputError, did_you_mean
from assay.core.sequential import confidence_sequence, first_decision
from assay.datasets import columns as cols
from assay.services.integrity import verify_manifest
from assay.services.out_folder import check_out, out_folder
from assay.services.runs import paired_runs
from assay.services.workspace import Workspace
from assay.store.files import temp_file
from assay.store.manifests import manifest_schema

POINTS = 200  # points of the trajectory kept in sequential.json


def _valid(column: pa.ChunkedArray, rows: pa.Array) -> np.ndarray:
    taken = column.combine_chunks().take(rows)
    return np.asarray(taken.is_valid().to_numpy(zero_copy_only=False), bool)


def sequential_comparison(
    ws: Workspace,
    candidate: str,
    baseline: str,
    order: str | None = None,
    margin: float = 0.01,
    alpha: float = 0.05,
    out: Path | None = None,
) -> dict[str, Any]:
    """The confidence sequence of the accuracy difference (candidate - baseline) over the items
    both runs judged, in label order, and the non-inferiority decision it reaches."""
    if not 0 <= margin < 1:
        raise InputError("--margin must lie in [0, 1): an accuracy difference")
    if not 0 < alpha < 0.5:
        raise InputError("--alpha must lie in (0, 0.5)")
    if out is not None:
        check_out(out, ws.home)
    cand, base = paired_runs(ws, candidate, baseline)
    dv = ws.catalog.get_dataset_by_id(cand.dataset_id)
    verify_manifest(ws, dv)
    manifest = Path(dv.manifest_path)
    names = manifest_schema(manifest).names
    if order is not None and order not in names:
        raise InputError(
            f"--order {order!r} is not a column of {dv.ref}"
            + did_you_mean(order, [n for n in names if n not in cols.RESERVED])
        )
    items = pq.read_table(manifest, columns=[cols.ITEM_ID, *([order] if order else [])])
    position = np.arange(items.num_rows)
    keep = np.ones(items.num_rows, bool)
    if order is not None:
        values = items.column(order)
        keep = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), bool)
        ranks = np.asarray(
            pc.rank(values.combine_chunks(), sort_keys="ascending", tiebreaker="first").to_numpy(
                zero_copy_only=False
            ),
            np.int64,
        )
        position = ranks
    both = []
    for run in (cand, base):
        t = pq.read_table(
            Path(run.run_dir) / "predictions.parquet",
            columns=["item_id", "label", "correct", "error"],
        )
        at = pc.index_in(items.column(cols.ITEM_ID), value_set=t.column("item_id"))
        rows = pa.array(np.asarray(at.fill_null(0).to_numpy(zero_copy_only=False), np.int64))
        present = np.asarray(at.is_valid().to_numpy(zero_copy_only=False), bool)
        correct = t.column("correct").combine_chunks().take(rows)
        judged = np.asarray(correct.is_valid().to_numpy(zero_copy_only=False), bool) & present
        # An item with a reference the model gave no answer for (NaN, a failure): not judged.
        failed = (
            ~judged & present & _valid(t.column("error"), rows) & _valid(t.column("label"), rows)
        )
        right = np.asarray(correct.fill_null(False).to_numpy(zero_copy_only=False), bool)
        both.append((judged | failed, right & judged, failed))
    # An item one model could not judge counts as one it got wrong: a candidate that answers
    # a third of the items with NaN is a third worse, not judged on the rest alone. An item
    # neither could judge (an unreadable file) tells them apart in nothing: counted as a tie
    # for both, 70% such items pulled a candidate 0.054 worse to -0.016 and it was accepted.
    compared = both[0][0] & both[1][0] & ~(both[0][2] & both[1][2])
    usable = keep & compared
    idx = np.flatnonzero(usable)
    idx = idx[np.argsort(position[idx], kind="stable")]
    d = both[0][1][idx].astype(float) - both[1][1][idx].astype(float)
    seq = confidence_sequence(d, alpha)
    decision, at_n = first_decision(seq, margin)
    n = int(d.size)
    marks = sorted({int(k) for k in np.unique(np.geomspace(1, max(n, 1), POINTS).astype(int))}
                   | ({at_n} if at_n else set()) | ({n} if n else set()))  # fmt: skip
    doc: dict[str, Any] = {
        "candidate_run": cand.id,
        "baseline_run": base.id,
        "candidate": ws.catalog.get_model_by_id(cand.model_id).ref,
        "baseline": ws.catalog.get_model_by_id(base.model_id).ref,
        "dataset": dv.ref,
        "order": order,
        "n_items": n,
        "n_waiting": int((~keep & compared).sum()),
        # Of the n_items: those each model could not judge, counted as wrong (items neither
        # could judge are left out, in n_unjudged_by_both).
        "n_unjudged": {
            "candidate": int(both[0][2][idx].sum()),
            "baseline": int(both[1][2][idx].sum()),
        },
        "n_unjudged_by_both": int((keep & both[0][2] & both[1][2]).sum()),
        "margin": margin,
        "alpha": alpha,
        "decision": decision,
        "decided_after": at_n,
        "final": None
        if n == 0
        else {
            "mean": float(seq.mean[-1]),
            "lower": float(seq.lower[-1]),
            "upper": float(seq.upper[-1]),
        },
        "trajectory": [
            {
                "n": k,
                "mean": float(seq.mean[k - 1]),
                "lower": float(seq.lower[k - 1]),
                "upper": float(seq.upper[k - 1]),
            }
            for k in marks
            if 1 <= k <= n
        ],
        "method": "predictable plug-in empirical-Bernstein confidence sequence (Waudby-Smith & "
        "Ramdas 2023), running intersection; valid at every number of items at once",
        "rule": "an item one model could not judge counts as wrong for it, one neither could "
        "judge is left out; "
        f"accept when the lower bound of candidate - baseline accuracy exceeds -{margin}; "
        f"reject when the upper bound falls below -{margin}; no decision (inconsistent) once "
        "the bounds cross, as the items' order then follows their outcomes",
    }
    folder = out_folder(out if out is not None else (
        ws.home / "comparisons" / f"{cand.id[:12]}-vs-{base.id[:12]}"))  # fmt: skip
    fd, tmp = temp_file(folder, prefix=".sequential-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, folder / "sequential.json")
    doc["file"] = str(folder / "sequential.json")
    return doc
