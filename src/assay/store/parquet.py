"""How the store writes Parquet: one place for the encoding choices every file shares.

pyarrow dictionary-encodes every column by default and only falls back to plain encoding after a
page of distinct values. For float scores, vectors and unique item ids that is pure waste: on a
million six-class predictions it cost 0.6 s of CPU (four times the rest of the write) and made
the file larger. Only string and boolean columns that repeat (labels, outcomes, line, camera) are
dictionary-encoded here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from assay.core.errors import InputError
from assay.digests import file_sha256

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


def part_dir(path: Path) -> Path:
    """The folder of a file's committed parts while a run writes it: ``name.parts``."""
    return path.with_name(path.name + ".parts")


def check_parts(path: Path, digests: Sequence[str]) -> None:
    """The committed parts of ``path`` are the ones a checkpoint recorded: FileNotFoundError
    when one is missing, InputError when one changed since it was committed."""
    for i, digest in enumerate(digests):
        part = part_dir(path) / f"{i:05d}.parquet"
        if not part.exists():
            raise FileNotFoundError(f"part {part} of a checkpoint is missing")
        if file_sha256(part) != digest:
            raise InputError(
                f"part {part} of a checkpoint has changed since it was committed: start the "
                "run again"
            )


class PartedWriter:
    """A Parquet file written as numbered parts, so that rows can be committed mid-way.

    ``commit()`` closes the part being written; it appears whole, by rename, and a checkpoint may
    then record it by its SHA-256. A resumed run reopens the file with the digests of the parts
    its checkpoint recorded: each is checked (a part edited while the run was stopped would be
    joined into its predictions unread), later parts and half-written ones are deleted, and
    writing appends after them. ``close()`` joins the parts into ``path`` (one part is renamed,
    never copied) and removes the folder.
    """

    def __init__(
        self,
        path: Path,
        schema: pa.Schema | None = None,
        unique: tuple[str, ...] = (),
        committed: Sequence[str] = (),
    ) -> None:
        self.path = path
        self.schema = schema
        self.unique = unique
        self.dir = part_dir(path)
        self.digests = list(committed)
        self._writer: pq.ParquetWriter | None = None
        self.closed = False
        if not self.digests and self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(exist_ok=True)
        for leftover in self.dir.iterdir():  # a killed run's uncommitted parts
            if leftover.name not in {self._part(i).name for i in range(self.committed)}:
                leftover.unlink()
        check_parts(path, self.digests)

    @property
    def committed(self) -> int:
        return len(self.digests)

    def _part(self, i: int) -> Path:
        return self.dir / f"{i:05d}.parquet"

    def parts(self) -> list[Path]:
        """The committed parts, in order."""
        return [self._part(i) for i in range(self.committed)]

    def write_table(self, table: pa.Table) -> None:
        if self._writer is None:
            self.schema = self.schema or table.schema
            self._writer = open_writer(
                partial_path(self._part(self.committed)), self.schema, self.unique
            )
        self._writer.write_table(table)

    def commit(self) -> list[str]:
        """Make every row written so far durable as a part; returns the parts' digests."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            part = self._part(self.committed)
            digest = file_sha256(partial_path(part))
            os.replace(partial_path(part), part)
            self.digests.append(digest)
        return list(self.digests)

    def close(self, empty_when_none: bool = True) -> None:
        """Join the parts into ``path``; with no rows at all, an empty file (or none)."""
        if self.closed:
            return
        self.commit()
        parts = self.parts()
        if len(parts) == 1:
            os.replace(parts[0], self.path)
        elif parts:
            combine_parts([str(p) for p in parts], partial_path(self.path), self.unique)
            os.replace(partial_path(self.path), self.path)
        elif empty_when_none and self.schema is not None:
            write_table(self.schema.empty_table(), partial_path(self.path), self.unique)
            os.replace(partial_path(self.path), self.path)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.closed = True

    def abort(self, keep_committed: bool) -> None:
        """Stop writing: drop the part in progress, and the committed ones unless a resume may
        still use them."""
        if self.closed:
            return
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
            self._writer = None
        partial_path(self._part(self.committed)).unlink(missing_ok=True)
        if not keep_committed:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.closed = True


def combine_parts(parts: list[str], out: Path, unique: tuple[str, ...] = ("item_id",)) -> int:
    """Concatenate Parquet parts (in order) into one file, a row group at a time.

    Parts written before and after an upgrade may differ by a column (a run checkpointed by an
    earlier version, resumed by one that keeps more per item): the file has every column of
    any part, in the last part's order first, null in the rows of parts without it. A resumed
    segmentation run whose first parts had no ``pixel_counts`` failed here, and was lost."""
    if not parts:
        return 0
    schemas = [pq.read_schema(part) for part in parts]
    target = pa.unify_schemas(schemas[::-1]).with_metadata(schemas[-1].metadata)
    writer: pq.ParquetWriter | None = None
    n = 0
    try:
        for part in parts:
            file = pq.ParquetFile(part)
            for g in range(file.num_row_groups):
                table = _conformed(file.read_row_group(g), target)
                if writer is None:
                    writer = open_writer(out, target, unique)
                writer.write_table(table)
                n += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return n


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in its order: nulls where it has none."""
    if table.schema.equals(schema, check_metadata=False):
        return table.replace_schema_metadata(schema.metadata)
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
