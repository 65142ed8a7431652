"""Several experts' labels per item: ``label_<annotator>`` columns, or a long table joined in.

The reference label of an item is its **consensus**: the label a strict majority of the experts
who labelled it gave. An item without one is **disputed**: it keeps every expert's label, gets no
reference label, and is reported as disputed rather than judged, so that a disagreement between
experts never counts as a model error. When the dataset also has its own label column (an
adjudicated label), that column stays the reference and the experts' columns feed the agreement
analysis only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.tables import as_string, iter_table, table_schema

PREFIX = cols.ANNOTATOR_PREFIX
LONG_COLUMNS = ("item_id", "annotator", "label")
annotator_columns = cols.annotator_columns


def annotator_name(column: str) -> str:
    return column[len(PREFIX) :]


def consensus(votes: list[pa.Array]) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Per row, the label a strict majority of the non-missing votes gave (null when none), and
    whether the row is disputed (labelled by at least one expert, yet without a majority)."""
    n = len(votes[0]) if votes else 0
    text = [as_string(v) for v in votes]
    # Codes over the union of the labels given, so that counting is one vectorised pass.
    values = pc.unique(pa.chunked_array(text, pa.string()).combine_chunks()).drop_null()
    codes = np.stack(
        [
            np.asarray(
                pc.index_in(t, value_set=values).fill_null(-1).to_numpy(zero_copy_only=False),
                dtype=np.int64,
            )
            for t in text
        ]
    )
    k = max(len(values), 1)
    counts = np.zeros((n, k), dtype=np.int64)
    rows = np.broadcast_to(np.arange(n), codes.shape)
    voted = codes >= 0
    np.add.at(counts, (rows[voted], codes[voted]), 1)
    n_votes = counts.sum(axis=1)
    best = counts.argmax(axis=1)
    majority = counts[np.arange(n), best] * 2 > n_votes
    labels = (
        pc.take(values, pa.array(best, pa.int64())) if len(values) else pa.nulls(n, pa.string())
    )
    labels = pc.if_else(pa.array(majority & (n_votes > 0)), labels, pa.scalar(None, pa.string()))
    return labels, (n_votes > 0) & ~majority


def with_consensus(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with ``__label`` set to the experts' consensus and ``__disputed`` added."""
    experts = annotator_columns(batch.schema.names)
    labels, disputed = consensus([batch.column(c) for c in experts])
    arrays = list(batch.columns)
    arrays[batch.schema.get_field_index(cols.LABEL)] = labels
    return pa.RecordBatch.from_arrays(
        [*arrays, pa.array(disputed)], names=[*batch.schema.names, cols.DISPUTED]
    )


@dataclass(frozen=True)
class LongAnnotations:
    """A long table (``item_id``, ``annotator``, ``label``), indexed for joining by item id."""

    annotators: tuple[str, ...]
    ids: tuple[pa.Array, ...]  # per annotator: the item ids it labelled
    labels: tuple[pa.Array, ...]  # per annotator: its labels, aligned with ``ids``
    path: Path

    @classmethod
    def load(cls, path: Path) -> LongAnnotations:
        path = Path(path).expanduser()
        if not path.exists():
            raise InputError(f"annotations file does not exist: {path}")
        names = table_schema(path).names
        missing = [c for c in LONG_COLUMNS if c not in names]
        if missing:
            raise InputError(
                f"{path}: an annotations table needs columns {', '.join(LONG_COLUMNS)}; "
                f"{missing[0]!r} is missing"
            )
        parts = [
            b.select(list(LONG_COLUMNS)) for b in iter_table(path, list(LONG_COLUMNS), 1 << 20)
        ]
        table = pa.Table.from_batches(parts) if parts else pa.table({c: [] for c in LONG_COLUMNS})
        table = pa.table({c: as_string(table.column(c).combine_chunks()) for c in LONG_COLUMNS})
        if table.num_rows == 0:
            raise InputError(f"{path}: the annotations table is empty")
        for c in ("item_id", "annotator"):
            if table.column(c).null_count:
                raise InputError(f"{path}: column {c!r} has empty values")
        pairs = table.group_by(["item_id", "annotator"]).aggregate([([], "count_all")])
        twice = pc.filter(pairs, pc.greater(pairs.column("count_all"), 1))
        if twice.num_rows:
            row = twice.slice(0, 1).to_pylist()[0]
            raise InputError(
                f"{path}: annotator {row['annotator']!r} labels item {row['item_id']!r} "
                f"{row['count_all']} times"
            )
        annotators = tuple(sorted(pc.unique(table.column("annotator")).to_pylist()))
        for a in annotators:
            if not a.replace("-", "").replace("_", "").isalnum():
                raise InputError(
                    f"{path}: annotator name {a!r} must be letters, digits, '-' or '_'"
                )
        ids, labels = [], []
        for a in annotators:
            mine = pc.filter(table, pc.equal(table.column("annotator"), a))
            ids.append(mine.column("item_id").combine_chunks())
            labels.append(mine.column("label").combine_chunks())
        return cls(annotators, tuple(ids), tuple(labels), path)

    def join(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` with one ``label_<annotator>`` column per expert (null: not labelled)."""
        item_ids = batch.column(cols.ITEM_ID)
        clash = [PREFIX + a for a in self.annotators if PREFIX + a in batch.schema.names]
        if clash:
            raise InputError(f"{self.path}: the dataset already has a column {clash[0]!r}")
        for a, ids, labels in zip(self.annotators, self.ids, self.labels, strict=True):
            at = pc.index_in(item_ids, value_set=ids)
            batch = batch.append_column(PREFIX + a, pc.take(labels, at))
        return batch

    def unique_ids(self) -> pa.Array:
        """Every annotated item id once, for counting ids that name no dataset item."""
        return pc.unique(pa.chunked_array(self.ids, pa.string()).combine_chunks())
