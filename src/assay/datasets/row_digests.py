"""Per-row content digests of a table's items, so that a later version's unchanged rows are
recognised (``assay validate`` reuses a model's recorded predictions for them).

A row's digest covers what a model could read of it: every column except the item id (the
``--id-column``) and the label column (and the reserved columns). A corrected label keeps the
digest; any changed feature or metadata value changes it, and so does a renamed column or one
whose values change kind (numbers, times, text: names and kinds are hashed first). Numbers are
hashed as the float64 they equal, whatever their stored type (1850 and 1850.0 are one value, as
a model reads them), and times in nanoseconds, whatever their stored unit (a CSV's milliseconds
and a Parquet file's microseconds of one instant are one value), but not otherwise normalised
(-0.0 is not 0.0, one NaN payload is not another): a model may read those differently. These
digests are stored at registration (``__digest``) and compared across versions for reuse and
the item history, so this encoding stays as it is.

``as_values``: what the leakage audit and the decision budget compare, rows from any writer
(pandas, a CSV export, SQL, Spark), so a value is hashed as what it is, not as how it was
stored: a decimal as the number it equals, a category (dictionary) column as its values, and a
missing value as one value, whether null, NaN (pandas writes a missing reading so, a CSV an
empty cell) or, in a text column, the empty text.

The digest is BLAKE2b-128 of a fixed-width encoding of the row: per column a tag byte (null,
number, large integer) and the value (8 bytes for numbers and times, the 16-byte digest of the
text for anything else).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay.datasets import columns as cols

DIGEST_TYPE = pa.binary(16)
U8 = npt.NDArray[np.uint8]
A = TypeVar("A", pa.Array, pa.ChunkedArray)


def _fixed(values: npt.NDArray[np.generic]) -> U8:
    """Each value's bytes, one row per value."""
    values = np.ascontiguousarray(values)
    return values.view(np.uint8).reshape(len(values), values.itemsize)


def _text_digests(array: pa.Array) -> U8:
    """16 bytes per value: the digest of its text, each distinct value hashed once."""
    encoded = pc.dictionary_encode(array)
    distinct = encoded.dictionary.to_pylist()
    table = np.zeros((len(distinct) + 1, 16), np.uint8)  # the last row: null
    for i, value in enumerate(distinct):
        raw = value if isinstance(value, bytes) else json.dumps(value, default=str).encode()
        table[i] = np.frombuffer(hashlib.blake2b(raw, digest_size=16).digest(), np.uint8)
    indices = encoded.indices.fill_null(len(distinct)).to_numpy(zero_copy_only=False)
    out: U8 = table[indices]
    return out


EXACT_INT = 2**53  # integers up to this size are exactly a float64: hashed as that number


def _cells(array: pa.Array, as_values: bool = False) -> tuple[str, U8]:
    """The fixed-width encoding of one column, and its kind: per value a tag byte (0: null),
    then the value. Numbers of any type (integers, floats, booleans) are hashed as the float64
    they equal, so 1850 in a CSV and 1850.0 in Parquet are one value; an integer too large to
    be a float64 exactly keeps its own bytes, under another tag."""
    if as_values:
        array = plain(array)
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), bool)
    t = array.type
    if as_values and pa.types.is_floating(t):
        valid &= ~np.isnan(array.to_numpy(zero_copy_only=False))  # NaN: missing, as null
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        if pa.types.is_integer(t):
            ints = (
                pc.cast(array, pa.int64(), safe=False).fill_null(0).to_numpy(zero_copy_only=False)
            )
            big = np.abs(ints.astype(np.float64)) > EXACT_INT
            values = np.where(big, ints.view(np.float64), ints.astype(np.float64))
            tags = np.where(big, 2, 1)
        else:
            values = array.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
            tags = np.ones(len(array), np.int64)
        tag = np.where(valid, tags, 0).astype(np.uint8).reshape(-1, 1)
        if as_values:
            values = np.where(valid, values, 0.0)  # a missing value has no bytes of its own
        return "number", np.hstack([tag, _fixed(np.asarray(values, np.float64))])
    tag = valid.astype(np.uint8).reshape(-1, 1)
    if pa.types.is_temporal(t):
        kind, array = _canonical_time(array)
        ticks = pc.cast(array, pa.int64(), safe=False).fill_null(0).to_numpy(zero_copy_only=False)
        return kind, np.hstack([tag, _fixed(np.asarray(ticks, np.int64))])
    if as_values and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        # The empty text is missing, as an empty CSV cell is null in Parquet.
        present = pc.fill_null(pc.not_equal(array, ""), False).to_numpy(zero_copy_only=False)
        missing = ~np.asarray(present, bool)
        digests = _text_digests(array)
        digests[missing] = 0
        return "text", np.hstack([(~missing).astype(np.uint8).reshape(-1, 1), digests])
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return "text", np.hstack([tag, _text_digests(array)])
    if as_values and pa.types.is_null(t):  # a column empty throughout: every value missing
        return "text", np.zeros((len(array), 17), np.uint8)
    # lists, structs (and, unless as_values, decimals and categories): their values as JSON text
    texts = pa.array([json.dumps(v, default=str) for v in array.to_pylist()])
    return "json", np.hstack([tag, _text_digests(texts)])


def plain(array: A) -> A:
    """``array`` as the values it holds: a category (dictionary) column decoded, decimals as
    the float64 they equal (whole ones as integers)."""
    if pa.types.is_dictionary(array.type):
        array = pc.cast(array, array.type.value_type)
    if pa.types.is_decimal(array.type) and array.type.scale == 0:
        # A whole number: as an integer (exact beyond 2**53, as integers are); one too large
        # for 64 bits as its text, never collapsed into a float.
        try:
            array = pc.cast(array, pa.int64())
        except pa.ArrowInvalid:
            array = pc.cast(array, pa.string())
    elif pa.types.is_decimal(array.type):
        # Through text: Arrow's direct cast is not correctly rounded (9.87 became
        # 9.870000000000001, one value in eight), parsing the decimal's text is.
        array = pc.cast(pc.cast(array, pa.string()), pa.float64())
    return array


def _canonical_time(array: pa.Array) -> tuple[str, pa.Array]:
    """A time column in one unit, and its kind: the same instant read from a CSV (milliseconds)
    and from Parquet (microseconds) is one value. Timestamps and dates become nanoseconds since
    the epoch (a zoned timestamp's ticks are UTC already, so its zone's name does not count, but
    being zoned does), times of day and durations nanoseconds. A value beyond what nanoseconds
    can hold (before 1677 or after 2262) keeps its own unit."""
    t = array.type
    if pa.types.is_timestamp(t):
        kind, target = (
            ("timestamp" if t.tz is None else "timestamp-zoned"),
            pa.timestamp("ns", t.tz),
        )
    elif pa.types.is_date(t):
        kind, target = "date", pa.timestamp("ns")
    elif pa.types.is_time(t):
        kind, target = "time", pa.time64("ns")
    elif pa.types.is_duration(t):
        kind, target = "duration", pa.duration("ns")
    else:
        return str(t), array
    try:
        return kind, pc.cast(array, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return str(t), array


def input_columns(
    schema: pa.Schema, label_column: str | None, id_column: str | None = None
) -> list[str]:
    """The columns a row's digest covers, in table order: all but the reserved ones, the label
    column and the id column. Experts' ``label_<name>`` columns are covered: a model may read
    a column of that name, and a stale output is worse than one more inference."""
    skip: Collection[str] = {
        *cols.RESERVED,
        *((label_column,) if label_column else ()),
        *((id_column,) if id_column else ()),
    }
    return [n for n in schema.names if n not in skip]


# as_values: each kind's tag, so that a missing value (tag 0, no bytes) is one whatever the
# column's type, a column empty throughout one table (Arrow's null type) included.
_VALUE_TAGS = {"number": 1, "text": 4, "json": 5}


def _as_value_cells(kind: str, cells: U8) -> U8:
    """One column's cells for ``as_values``: a tag naming the kind (0 when missing), then the
    value in 16 bytes (zeros when missing)."""
    out = np.zeros((cells.shape[0], 17), np.uint8)
    present = cells[:, 0] != 0
    base = _VALUE_TAGS.get(kind, 3)  # times
    out[:, 0] = np.where(present, base + (cells[:, 0] == 2), 0)  # 2: a number's exact integer
    width = cells.shape[1] - 1
    out[present, 1 : 1 + width] = cells[present, 1:]
    return out


def row_digests(
    batch: pa.RecordBatch,
    label_column: str | None,
    id_column: str | None = None,
    as_values: bool = False,
) -> pa.Array:
    """One 16-byte digest per row of ``batch`` (see the module's docstring)."""
    names = input_columns(batch.schema, label_column, id_column)
    n = batch.num_rows
    cells = [_cells(batch.column(name), as_values) for name in names]
    if as_values:
        cells = [(kind, _as_value_cells(kind, m)) for kind, m in cells]
    head = json.dumps(
        names if as_values else [[name, kind] for name, (kind, _) in zip(names, cells, strict=True)]
    )
    key = hashlib.blake2b(head.encode(), digest_size=32).digest()
    parts = [m for _, m in cells]
    matrix = np.ascontiguousarray(np.hstack(parts) if parts else np.zeros((n, 0), np.uint8))
    width = matrix.shape[1]
    data = matrix.tobytes()
    digests = b"".join(
        hashlib.blake2b(data[i * width : (i + 1) * width], digest_size=16, key=key).digest()
        for i in range(n)
    )
    return pa.FixedSizeBinaryArray.from_buffers(DIGEST_TYPE, n, [None, pa.py_buffer(digests)])


def with_row_digests(
    batch: pa.RecordBatch, label_column: str | None, id_column: str | None = None
) -> pa.RecordBatch:
    """``batch`` with its rows' digests in ``__digest``."""
    return batch.append_column(
        pa.field(cols.DIGEST, DIGEST_TYPE), row_digests(batch, label_column, id_column)
    )
