"""Dataset manifests stored as Parquet: the normalised, immutable content of a dataset version."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from assay.core.errors import InputError

LABEL_COLUMN = "__label"


@dataclass
class ManifestStats:
    n_items: int = 0
    label_counts: Counter[str] = field(default_factory=Counter)
    n_unlabelled: int = 0
    schema: pa.Schema | None = None


def write_manifest(batches: Iterable[pa.RecordBatch], path: Path) -> ManifestStats:
    """Write batches to one Parquet file, counting items and labels on the way."""
    stats = ManifestStats()
    writer: pq.ParquetWriter | None = None
    try:
        for batch in batches:
            if writer is None:
                stats.schema = batch.schema
                # LZ4: decompresses several times faster than zstd, and manifests are read on every run.
                writer = pq.ParquetWriter(path, batch.schema, compression="lz4")
            elif batch.schema != stats.schema:
                try:
                    batch = batch.cast(stats.schema)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
                    raise InputError(
                        "column types change part-way through the table; convert it to Parquet "
                        "or make the column types consistent"
                    ) from None
            writer.write_batch(batch, row_group_size=65_536)
            stats.n_items += batch.num_rows
            counts = batch.column(LABEL_COLUMN).value_counts()
            for entry in counts.to_pylist():
                if entry["values"] is None:
                    stats.n_unlabelled += entry["counts"]
                else:
                    stats.label_counts[entry["values"]] += entry["counts"]
    finally:
        if writer is not None:
            writer.close()
    return stats


def read_manifest(
    path: Path, batch_rows: int, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream a stored manifest, reading only ``columns`` when given."""
    yield from pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns)


def manifest_schema(path: Path) -> pa.Schema:
    return pq.read_schema(path)


def count_nulls(path: Path, column: str) -> int:
    """How many rows of a stored manifest have no value in ``column``."""
    return int(pq.read_table(path, columns=[column]).column(column).null_count)


def read_column(path: Path, column: str) -> list[object]:
    """One column of a stored manifest as Python values (metadata columns: small enough)."""
    return list(pq.read_table(path, columns=[column]).column(column).to_pylist())
