"""analyse_agreement: several experts' labels against each other and against the model's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.core.agreement import PatternCounts, agreement_summary
from assay.core.intervals import IntervalConfig
from assay.datasets import columns as cols
from assay.datasets.annotations import annotator_name, consensus
from assay.store.manifests import manifest_schema, read_manifest
from assay.store.parquet import open_writer
from assay.store.predictions import rebatch

ROWS = 65_536
SHOWN = 100


def analyse_agreement(
    manifest: Path,
    predictions: Path,
    labels: tuple[str, ...],
    reference: str,
    intervals: IntervalConfig,
    disputed_out: Path,
) -> dict[str, Any] | None:
    """``expert_agreement`` for result.json (None without several experts); every disputed item
    goes to ``disputed_out`` (Parquet) with each expert's label and the model's."""
    names = manifest_schema(manifest).names
    columns = cols.annotator_columns(names)
    if len(columns) < 2:
        return None
    experts = tuple(annotator_name(c) for c in columns)
    extra = [c for c in (cols.PATH,) if c in names]
    categories = list(labels)
    index = {c: i for i, c in enumerate(categories)}
    state = PatternCounts(1 + len(columns))
    shown: list[dict[str, Any]] = []
    n_disputed = 0
    schema = pa.schema(
        [("item_id", pa.string()), ("predicted", pa.string()), ("ref", pa.string())]
        + [(f"label_{e}", pa.string()) for e in experts]
    )
    man = rebatch(read_manifest(manifest, ROWS, [*columns, *extra]), ROWS)
    pred = rebatch(
        pq.ParquetFile(predictions, pre_buffer=False).iter_batches(
            ROWS, columns=["item_id", "predicted"]
        ),
        ROWS,
    )
    with open_writer(disputed_out, schema, unique=("item_id", "ref")) as writer:
        for m, p in zip(man, pred, strict=True):
            votes = [pc.cast(m.column(c), pa.string()) for c in columns]
            for v in votes:  # labels only experts used get codes after the model's labels
                for value in pc.unique(v).drop_null().to_pylist():
                    if value not in index:
                        index[value] = len(categories)
                        categories.append(value)
            value_set = pa.array(categories, pa.string())
            codes = np.stack(
                [
                    np.asarray(
                        pc.index_in(a, value_set=value_set)
                        .fill_null(-1)
                        .to_numpy(zero_copy_only=False),
                        dtype=np.int64,
                    )
                    for a in (p.column("predicted"), *votes)
                ],
                axis=1,
            )
            state.update(codes)
            # Disputed: no strict majority among the experts (judged or not, as the reference says).
            _, disputed = consensus(votes)
            if not disputed.any():
                continue
            mask = pa.array(disputed)
            refs = (
                m.column(cols.PATH)
                if cols.PATH in m.schema.names
                else pa.nulls(len(m), pa.string())
            )
            table = pa.Table.from_arrays(
                [p.column("item_id"), p.column("predicted"), refs, *votes], schema=schema
            ).filter(mask)
            writer.write_table(table)
            n_disputed += table.num_rows
            shown.extend(table.slice(0, max(0, SHOWN - len(shown))).to_pylist())
    summary = agreement_summary(state, experts, tuple(categories), intervals)
    summary["reference"] = reference
    summary["n_disputed"] = n_disputed
    # With a consensus reference, disputed items are not judged; an adjudicated label judges them.
    summary["disputed_judged"] = cols.DISPUTED not in names
    summary["disputed"] = [
        {
            "item_id": row["item_id"],
            "predicted": row["predicted"],
            "ref": row["ref"],
            "labels": {e: row[f"label_{e}"] for e in experts},
        }
        for row in shown
    ]
    summary["disputed_truncated"] = n_disputed > len(shown)
    return summary
