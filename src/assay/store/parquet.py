"""How the store writes Parquet: one place for the encoding choices every file shares.

pyarrow dictionary-encodes every column by default and only falls back to plain encoding after a
page of distinct values. For float scores, vectors and unique item ids that is pure waste: on a
million six-class predictions it cost 0.6 s of CPU (four times the rest of the write) and made
the file larger. Only string and boolean columns that repeat (labels, outcomes, line, camera) are
dictionary-encoded here.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# LZ4: decompresses several times faster than zstd, and these files are read back on every run.
COMPRESSION = "lz4"


def dictionary_columns(schema: pa.Schema, unique: tuple[str, ...] = ()) -> list[str]:
    """String-like and boolean columns of ``schema``, except those known to be unique per row."""
    return [
        f.name
        for f in schema
        if f.name not in unique
        and (
            pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)
            or pa.types.is_boolean(f.type)
            or pa.types.is_dictionary(f.type)
        )
    ]


def open_writer(
    path: Path | str, schema: pa.Schema, unique: tuple[str, ...] = ()
) -> pq.ParquetWriter:
    """A ParquetWriter with the store's compression and dictionary choices."""
    return pq.ParquetWriter(
        path,
        schema,
        compression=COMPRESSION,
        use_dictionary=dictionary_columns(schema, unique),
    )


def write_table(table: pa.Table, path: Path | str, unique: tuple[str, ...] = ()) -> None:
    """Write a whole table at once with the same choices as ``open_writer``."""
    with open_writer(path, table.schema, unique) as writer:
        writer.write_table(table)


def partial_path(path: Path) -> Path:
    """Where a file is written until it is complete (renamed to ``path`` on close): a killed
    process leaves ``name.partial``, never a ``name`` without its Parquet footer."""
    return path.with_name(path.name + ".partial")
