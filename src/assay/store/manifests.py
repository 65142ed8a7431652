"""Dataset manifests stored as Parquet: the normalised, immutable content of a dataset version."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.arrow import as_bools, number, numbers, string, validity
from assay.core.errors import InputError, did_you_mean
from assay.core.slicing import OPPOSITE, SliceSpec, parse_slice_spec
from assay.store.coders import fit_coders
from assay.store.judged_items import judged
from assay.store.parquet import open_writer

LABEL_COLUMN = "__label"
# Unique per row: not worth a dictionary (see assay.store.parquet).
UNIQUE_COLUMNS = ("__item_id", "__path", "__sha256", "__digest")


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
                writer = open_writer(path, batch.schema, UNIQUE_COLUMNS)
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
    # pre_buffer=False: with pre-buffering, pyarrow keeps every row group's buffers until the
    # iterator ends, and resident memory grows by ~15 bytes per row read.
    file = pq.ParquetFile(path, pre_buffer=False)
    yield from file.iter_batches(batch_size=batch_rows, columns=columns)


def manifest_schema(path: Path) -> pa.Schema:
    return pq.read_schema(path)


def duplicate_ids(path: Path, examples: int = 3) -> tuple[int, list[str]] | None:
    """How many item ids of a written manifest occur more than once, and a few of them (None:
    every id is unique). Counted by Arrow over the id column alone."""
    ids = pq.read_table(path, columns=["__item_id"]).column("__item_id")
    counts = pc.value_counts(ids)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(repeated) == 0:
        return None
    return len(repeated), [str(v) for v in repeated.field("values")[:examples].to_pylist()]


def count_nulls(path: Path, column: str) -> int:
    """How many rows of a stored manifest have no value in ``column``."""
    return int(pq.read_table(path, columns=[column]).column(column).null_count)


def read_column(path: Path, column: str) -> list[object]:
    """One column of a stored manifest as Python values (metadata columns: small enough)."""
    return list(pq.read_table(path, columns=[column]).column(column).to_pylist())


def coded_column(
    path: Path, name: str, max_categories: int = 20, n_bins: int = 5
) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """A whole manifest column as slice codes (-1: missing) and labels; None when it cannot be
    sliced (see ``assay.store.coders``)."""
    coder = fit_coders(path, [name], max_categories, n_bins)[name]
    if coder is None:
        return None
    return coder.encode(pq.read_table(path, columns=[name]).column(name)), coder.labels


def judged_errors(predictions: Path, baseline: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(valid, error) per item of a whole run (see ``assay.store.judged_items.judged``)."""
    correct = pq.read_table(predictions, columns=["correct"]).column("correct").combine_chunks()
    if baseline is None:
        return judged(correct, None)
    base = pq.read_table(baseline, columns=["correct"]).column("correct").combine_chunks()
    return judged(correct, base)


def slice_codes(
    path: Path, spec: SliceSpec
) -> tuple[np.ndarray, tuple[tuple[tuple[str, str], ...], ...]]:
    """Per item, the index of its slice under ``spec`` (-1: in none), and each slice's key."""
    names = manifest_schema(path).names
    for column in spec.columns:
        if column not in names:
            raise InputError(
                f"slice {spec.text!r}: the dataset has no column {column!r}"
                + did_you_mean(column, names)
            )
    if spec.is_predicate:
        return _predicate_codes(path, spec)
    coded = [coded_column(path, c, max_categories=50) for c in spec.columns]
    for column, c in zip(spec.columns, coded, strict=True):
        if c is None:
            raise InputError(
                f"slice {spec.text!r}: column {column!r} cannot be sliced (an identifier or nested values)"
            )
    present = [c for c in coded if c is not None]
    codes = present[0][0].astype(np.int64)
    keys: list[tuple[tuple[str, str], ...]] = [((spec.columns[0], v),) for v in present[0][1]]
    for column, (more, labels) in zip(spec.columns[1:], present[1:], strict=True):
        valid = (codes >= 0) & (more >= 0)
        codes = np.where(valid, codes * len(labels) + more, -1)
        keys = [(*k, (column, v)) for k in keys for v in labels]
    return codes.astype(np.int32), tuple(keys)


def _predicate_codes(
    path: Path, spec: SliceSpec
) -> tuple[np.ndarray, tuple[tuple[tuple[str, str], ...], ...]]:
    (column,) = spec.columns
    assert spec.op is not None and spec.value is not None
    data = pq.read_table(path, columns=[column]).column(column).combine_chunks()
    compare = {
        ">=": pc.greater_equal,
        "<=": pc.less_equal,
        ">": pc.greater,
        "<": pc.less,
        "=": pc.equal,
        "!=": pc.not_equal,
    }[spec.op]
    numeric = (
        pa.types.is_integer(data.type)
        or pa.types.is_floating(data.type)
        or pa.types.is_decimal(data.type)
    )
    try:
        value = number(float(spec.value)) if numeric else string(str(spec.value))
        left = pc.cast(data, pa.float64()) if numeric else pc.cast(data, pa.string())
    except (ValueError, pa.ArrowInvalid):
        raise InputError(
            f"slice {spec.text!r}: {spec.value!r} is not a number, but {column!r} holds numbers"
        ) from None
    inside = compare(left, value)
    codes = np.where(~validity(inside), -1, np.where(as_bools(inside), 0, 1))
    keys = (
        ((column, f"{spec.op} {spec.value}"),),
        ((column, f"{OPPOSITE[spec.op]} {spec.value}"),),
    )
    return codes.astype(np.int32), keys


def slice_mask(path: Path, predicates: Iterable[tuple[str, str]]) -> np.ndarray:
    """Which items lie in the slice that ``predicates`` name, as the report wrote them:
    ``("camera", "3")``, ``("speed", "[1200, 1450)")`` (a quantile bin of the error-slice search,
    recomputed exactly as the search cut it) or ``("line_speed", ">= 1800")``."""
    names = manifest_schema(path).names
    mask = np.ones(pq.ParquetFile(path).metadata.num_rows, dtype=bool)
    for column, value in predicates:
        if column not in names:
            raise InputError(
                f"slice: the dataset has no column {column!r}{did_you_mean(column, names)}"
            )
        op = value.split(" ", 1)[0]
        if op in OPPOSITE and not value[len(op) :].strip():
            raise InputError(f"slice: {column} {op} needs a value")
        if op in OPPOSITE and " " in value:
            codes, _ = _predicate_codes(
                path, parse_slice_spec(f"{column}{op}{value.split(' ', 1)[1]}")
            )
            mask &= codes == 0
            continue
        # The error-slice search codes columns with the default coders, named slices with up
        # to 50 categories: the value is one of their labels.
        for max_categories in (20, 50):
            coder = fit_coders(path, [column], max_categories)[column]
            if coder is not None and value in coder.labels:
                data = pq.read_table(path, columns=[column]).column(column)
                mask &= coder.encode(data) == coder.labels.index(value)
                break
        else:
            raise InputError(f"slice: {column!r} has no value {value!r} in this dataset")
    return mask


def take_values(path: Path, column: str, rows: np.ndarray) -> pa.Array:
    """Values of ``column`` at row numbers of a Parquet file (any order, repeats allowed).

    Only the row groups holding a wanted row are read, one at a time, and only the wanted values
    kept: a million candidates' ids out of ten million rows never hold the whole column."""
    file = pq.ParquetFile(path, pre_buffer=False)
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    wanted = rows[order]
    if wanted.size and (wanted[0] < 0 or wanted[-1] >= file.metadata.num_rows):
        raise IndexError(f"row {int(wanted[-1])} is not in {path.name}")
    pieces = []
    start = 0
    for group in range(file.metadata.num_row_groups):
        end = start + file.metadata.row_group(group).num_rows
        lo, hi = np.searchsorted(wanted, [start, end])
        if hi > lo:
            values = file.read_row_group(group, columns=[column]).column(0)
            pieces.append(values.take(numbers(wanted[lo:hi] - start, pa.int64())).combine_chunks())
        start = end
    kind = file.schema_arrow.field(column).type
    taken = pa.concat_arrays(pieces) if pieces else pa.nulls(0, kind)
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    return taken.take(numbers(back, pa.int64()))


def take_column(path: Path, column: str, rows: np.ndarray) -> list[object]:
    """``take_values`` as Python values (for a few rows)."""
    return list(take_values(path, column, rows).to_pylist())
