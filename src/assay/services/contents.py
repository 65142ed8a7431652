"""An item's content, comparable across dataset versions: what tells the same item, unchanged,
in two versions (incremental validation reuses its recorded output; the item history judges an
earlier run's answer against a corrected label; a calibration set must not hold test items).

An image's content is its file's SHA-256. A table row's is the digest stored at registration
(``assay.datasets.row_digests``), which covers every column but the id and the label, in the
table's order: two versions whose columns are the same, in the same order, compare those. When
they are not (an export that wrote the columns in another order, a column added: the time a
label came in), the stored digests of unchanged rows differ, so the rows are compared by their
values in the columns every compared version covers, hashed anew from the manifests in the
order of their names. A model reads its input columns by name, so the order never changes an
output, and a column one version lacks is one no earlier run's model read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from assay.core.records import DatasetVersion
from assay.datasets import columns as cols
from assay.datasets.row_digests import DIGEST_TYPE, input_columns, row_digests
from assay.services.datasets import id_of, label_of
from assay.store.manifests import manifest_schema, read_manifest


def content_key(dataset: DatasetVersion) -> str:
    """The manifest column that names an item's stored content."""
    return cols.SHA256 if dataset.kind == "image" else cols.DIGEST


def covered(dataset: DatasetVersion) -> list[str] | None:
    """The columns a table version's stored digests cover, in their order (None: an image
    set, or a table registered before rows had digests)."""
    if dataset.kind == "image":
        return None
    schema = manifest_schema(Path(dataset.manifest_path))
    if cols.DIGEST not in schema.names:
        return None
    return input_columns(schema, label_of(dataset.options), id_of(dataset.options))


def rehashed_columns(versions: Sequence[DatasetVersion]) -> list[str] | None:
    """The columns table rows are compared by when their stored digests cannot be (the
    versions' digests cover other columns, or the same in another order): those every version
    covers, by name. None: the stored contents are compared as they are."""
    lists = {tuple(c) for c in (covered(d) for d in versions) if c is not None}
    if len(lists) < 2:
        return None
    first, *rest = lists
    return sorted(set(first).intersection(*rest))


def item_contents(versions: Sequence[DatasetVersion]) -> dict[int, pa.Array | None]:
    """Each version's items' contents, in its manifest's order, comparable across all of
    ``versions`` (by id; None: a version registered before items had content digests; tables
    that share no column get contents that never match). Images: SHA-256 hex text; tables:
    16-byte digests."""
    out: dict[int, pa.Array | None] = {}
    names = rehashed_columns(versions)
    for d in versions:
        if d.id in out:
            continue
        key = content_key(d)
        if key not in manifest_schema(Path(d.manifest_path)).names:
            out[d.id] = None
        elif d.kind == "image" or names is None:
            out[d.id] = _read(d, key)
        else:
            out[d.id] = _hashed(d, names) if names else _distinct(d)
    return out


def _distinct(d: DatasetVersion) -> pa.Array:
    """Contents that match no other version's: tables that share no column hold no item in
    common (taken for 'no digests', every row of one was the same item as the other's row
    of its id; a review)."""
    n = pq.ParquetFile(d.manifest_path).metadata.num_rows
    words = np.column_stack([np.full(n, d.id, np.uint64), np.arange(n, dtype=np.uint64)])
    return pa.FixedSizeBinaryArray.from_buffers(
        DIGEST_TYPE, n, [None, pa.py_buffer(np.ascontiguousarray(words).tobytes())]
    )


def _read(d: DatasetVersion, key: str) -> pa.Array:
    """The stored content column, read whole (one copy: batches joined afterwards held two,
    60 MiB more at the peak for a million rows)."""
    column = pq.ParquetFile(d.manifest_path).read(columns=[key]).column(key)
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


def _hashed(d: DatasetVersion, names: list[str]) -> pa.Array:
    """Each row's digest over ``names``, in that order (the stored digests' encoding)."""
    parts = [
        row_digests(pa.RecordBatch.from_arrays([b.column(n) for n in names], names=names), None)
        for b in read_manifest(Path(d.manifest_path), 65_536, names)
    ]
    return pa.concat_arrays(parts) if parts else pa.array([], DIGEST_TYPE)
