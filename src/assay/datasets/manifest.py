"""CSV/Parquet manifests: one row per image, a ``path`` column relative to the manifest's folder.

An optional ``mask`` column names each image's expert mask (a PNG, relative to the manifest's
folder; empty: not annotated), for segmentation and anomaly models. Every other column is
metadata (line, camera, shift...). The item id defaults to the row number, or comes from
``--id-column``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from assay.core.errors import InputError
from assay.datasets import columns as cols
from assay.datasets.registry import Reader, ReadOptions, inside_root, register_reader
from assay.datasets.source import DatasetSource
from assay.datasets.tables import (
    check_columns,
    iter_table,
    lists_image_files,
    table_schema,
    with_reserved_columns,
)

PATH_COLUMN = "path"
MASK_COLUMN = "mask"


def _detect(path: Path) -> bool:
    return lists_image_files(path)


def open_manifest(path: Path, options: ReadOptions) -> DatasetSource:
    """Images listed in a manifest file."""
    schema = table_schema(path)
    if PATH_COLUMN not in schema.names:
        raise InputError(f"{path}: a manifest needs a {PATH_COLUMN!r} column")
    label_column = options.label_column or "label"
    check_columns(
        schema, path, label_column, options.id_column, options.annotated or options.unlabelled
    )
    root = path.parent.resolve()
    has_mask = MASK_COLUMN in schema.names
    keep_text = [PATH_COLUMN, label_column, *cols.annotator_columns(schema.names)]
    keep_text += [options.id_column] if options.id_column else []
    keep_text += [MASK_COLUMN] if has_mask else []

    def resolved(batch: pa.RecordBatch, column: str, row: int) -> pa.Array:
        return pa.array(
            [
                None
                if p is None or p == ""
                else str(
                    inside_root(
                        root / p, root, f"{path.name} row {row + i}: {p!r}", options.allow_outside
                    )
                )
                for i, p in enumerate(batch.column(column).to_pylist())
            ],
            pa.string(),
        )

    def batches() -> Iterator[pa.RecordBatch]:
        row = 0
        for batch in iter_table(path, keep_text):
            out = with_reserved_columns(batch, row, label_column, options.id_column)
            out = out.append_column(cols.PATH, resolved(batch, PATH_COLUMN, row))
            if has_mask:
                out = out.append_column(cols.MASK, resolved(batch, MASK_COLUMN, row))
            row += batch.num_rows
            yield out

    return DatasetSource(
        format="manifest",
        kind="image",
        root=root,
        files=[path],
        batches=batches,
        options={"label_column": label_column, "id_column": options.id_column}
        | ({"allow_outside_paths": True} if options.allow_outside else {}),
        has_label=label_column in schema.names,
    )


register_reader(
    Reader(
        name="manifest",
        description="CSV/Parquet manifest with a 'path' column of image files (and 'mask' PNGs)",
        detect=_detect,
        open=open_manifest,
        priority=80,
    )
)
