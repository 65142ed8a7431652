"""ColumnCoder: how a manifest column becomes slice codes, fitted in passes over the manifest.

Numbers and timestamps become quantile bins; text and booleans their values (the most frequent
``max_categories``, the rest "other"); numbers with at most ``max_categories`` distinct values
are categories too. Identifier-like columns (mostly distinct text) and nested columns (lists,
structs) are not sliceable. Fitting reads the columns in batches and holds counts, a few
distinct values and a bounded number of floats per column (``StreamedQuantiles``), never a whole
column, so the search's memory does not grow with the rows; the bins equal ``np.quantile``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from assay.arrow import as_floats, as_ints, strings, validity
from assay.core.config import TABLE_BATCH_BYTES, TABLE_BATCH_ROWS
from assay.core.quantiles import StreamedQuantiles
from assay.core.slice_search import Codes, code_dtype

# Values the quantile search may hold at once, over all the columns fitted together (16 MiB).
QUANTILE_VALUES = 1 << 21
# A text column with more distinct values than this is taken for an identifier: counting them
# all would hold the column. (A column below it is still one when most of its values differ.)
MAX_DISTINCT_TEXT = 1 << 17


@dataclass(frozen=True)
class ColumnCoder:
    """Turns a column's values into slice codes (-1: missing) labelled ``labels``."""

    name: str
    labels: tuple[str, ...]
    edges: tuple[float, ...] | None  # inner bin edges; None: categories
    other: bool = False  # the last label gathers the values beyond the named ones

    def encode(self, column: pa.Array | pa.ChunkedArray) -> Codes:
        if self.edges is not None:
            values = _numbers(column)
            codes = np.zeros(len(values), dtype=code_dtype(max(len(self.labels), 5)))
            if not self.labels:
                codes[:] = -1
                return codes
            # A value's bin is the number of inner edges at or below it: one comparison per edge
            # is several times faster than a binary search over a handful of edges.
            for edge in self.edges:
                codes += values >= edge
            codes[~np.isfinite(values)] = -1
            return codes
        text = _text(column)
        named = self.labels[:-1] if self.other else self.labels
        index = pc.index_in(text, value_set=strings(named))
        codes = as_ints(index, -1).astype(code_dtype(len(named) + 1))
        if self.other:
            codes[(codes < 0) & validity(text)] = len(named)
        return codes


def _kind(t: pa.DataType) -> str | None:
    if pa.types.is_timestamp(t):
        return "time"
    if (
        pa.types.is_date(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
    ):
        return "number"
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_boolean(t)
        or pa.types.is_dictionary(t)
    ):
        return "text"
    return None


def _as_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _numbers(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.float64]:
    """Float values of a numeric, date or timestamp column (null: nan); timestamps in seconds."""
    column = _as_array(column)
    t = column.type
    if pa.types.is_timestamp(t):
        # Whole seconds (bins are labelled to the minute); a finer unit is truncated, not refused.
        whole = pc.cast(column, pa.timestamp("s", tz=t.tz), safe=False)
        return np.asarray(as_floats(pc.cast(whole, pa.int64())), dtype=np.float64)
    if pa.types.is_date(t):
        column = column.cast(pa.int32()).cast(pa.int64())
    return np.asarray(as_floats(column), dtype=np.float64)


def _text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The values as text: a category's label (dates as their day numbers)."""
    column = _as_array(column)
    if pa.types.is_date(column.type):
        column = column.cast(pa.int32()).cast(pa.int64())
    if pa.types.is_dictionary(column.type):
        return column.cast(pa.string())
    return pc.cast(column, pa.string())


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def _format(v: float) -> str:
    return f"{v:.4g}"


class _Fit:
    """What one column's batches have shown so far; ``coder()`` once no more passes are needed."""

    def __init__(self, name: str, kind: str, max_categories: int, n_bins: int, limit: int):
        self.name, self.kind = name, kind
        self.max_categories, self.n_bins = max_categories, n_bins
        self.rows = 0
        # Text counts, in order of first appearance (None: too many distinct values to count).
        self.counts: dict[str, int] | None = {} if kind != "time" else None
        # Numbers: distinct finite values while few (None: more than max_categories).
        self.distinct: set[float] | None = set() if kind == "number" else None
        self.quantiles = (
            StreamedQuantiles(np.linspace(0, 1, n_bins + 1), limit) if kind != "text" else None
        )
        self.first_pass = True

    @property
    def needs_pass(self) -> bool:
        if self.first_pass:
            return True
        return self._binned and self.quantiles is not None and not self.quantiles.done

    @property
    def _binned(self) -> bool:
        return self.kind == "time" or (self.kind == "number" and self.distinct is None)

    def update(self, column: pa.Array) -> None:
        values = None if self.kind == "text" else _numbers(column)
        if self.first_pass:
            self.rows += len(column)
            if self.kind == "text" or self.distinct is not None:
                self._count(column, values)
        if self.quantiles is not None and values is not None:
            self.quantiles.update(values)

    def _count(self, column: pa.Array, values: npt.NDArray[np.float64] | None) -> None:
        if self.distinct is not None and values is not None:
            finite = np.unique(values[np.isfinite(values)])
            self.distinct.update(finite.tolist())
            if len(self.distinct) > self.max_categories:
                self.distinct = None  # continuous: binned
                self.counts = None
                return
        if self.counts is None:
            return
        for entry in _text(column).value_counts().to_pylist():
            value = entry["values"]
            if value is not None:
                self.counts[value] = self.counts.get(value, 0) + entry["counts"]
        if len(self.counts) > MAX_DISTINCT_TEXT:
            self.counts = None

    def end_pass(self) -> None:
        if self.first_pass and not self._binned:
            self.quantiles = None  # categories: no bins to find
        self.first_pass = False
        if self.quantiles is not None:
            self.quantiles.end_pass()

    def coder(self) -> ColumnCoder | None:
        if self._binned:
            assert self.quantiles is not None and self.quantiles.result is not None
            return _bins(self.name, self.quantiles.result, _iso if self.kind == "time" else _format)
        if self.counts is None:
            return None
        if self.kind == "text" and len(self.counts) > max(self.max_categories, 0.5 * self.rows):
            return None
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])
        labels = [value for value, _ in ranked[: self.max_categories]]
        other = len(ranked) > self.max_categories
        return ColumnCoder(self.name, (*labels, *(("other",) if other else ())), None, other)


def _bins(name: str, quantiles: npt.NDArray[np.float64], fmt: Any) -> ColumnCoder:
    if not np.isfinite(quantiles).all():  # no finite value at all
        return ColumnCoder(name, (), ())
    edges = np.unique(quantiles)
    if edges.size == 1:
        return ColumnCoder(name, (fmt(edges[0]),), ())
    labels = tuple(
        f"[{fmt(edges[i])}, {fmt(edges[i + 1])}{']' if i == edges.size - 2 else ')'}"
        for i in range(edges.size - 1)
    )
    return ColumnCoder(name, labels, tuple(edges[1:-1].tolist()))


def batch_rows_for(n_columns: int) -> int:
    """Rows per batch so that a batch of ``n_columns`` numbers takes about TABLE_BATCH_BYTES."""
    low, high = TABLE_BATCH_ROWS
    return int(min(high, max(low // 8, TABLE_BATCH_BYTES // (8 * max(1, n_columns)))))


def fit_coders(
    path: Path, names: Iterable[str], max_categories: int = 20, n_bins: int = 5
) -> dict[str, ColumnCoder | None]:
    """A coder for each column of the manifest at ``path`` (None: it cannot be sliced)."""
    schema = pq.read_schema(path)
    fits: dict[str, _Fit] = {}
    out: dict[str, ColumnCoder | None] = {}
    numeric = [n for n in names if _kind(schema.field(n).type) in ("number", "time")]
    limit = QUANTILE_VALUES // max(1, len(numeric))
    for name in names:
        kind = _kind(schema.field(name).type)
        if kind is None:
            out[name] = None
        else:
            fits[name] = _Fit(name, kind, max_categories, n_bins, limit)
    while True:
        active = [f for f in fits.values() if f.needs_pass]
        if not active:
            break
        for batch in _read(path, [f.name for f in active]):
            for f, column in zip(active, batch.columns, strict=True):
                f.update(column)
        for f in active:
            f.end_pass()
    return out | {name: fit.coder() for name, fit in fits.items()}


def _read(path: Path, names: list[str]) -> Iterator[pa.RecordBatch]:
    # pre_buffer=False: with pre-buffering, pyarrow keeps every row group's buffers until the
    # iterator ends (see assay.store.manifests.read_manifest).
    file = pq.ParquetFile(path, pre_buffer=False)
    yield from file.iter_batches(batch_size=batch_rows_for(len(names)), columns=names)
