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
the item history, so this encoding stays as it is; versions whose columns differ (in order or
in number) are compared by digests of the columns they share, computed anew
(``assay.services.contents``).

``as_values``: what the leakage audit and the decision budget compare, rows from any writer
(pandas, a CSV export, SQL, Spark), so a value is hashed as what it is, not as how it was
stored: a number as the float64 it is when that holds it exactly (an integer, an unsigned
one, a decimal, a float: 2**60 is one value), else as its exact 64-bit integer, else its text;
a category (dictionary) column as its values; lists and structs by the values they hold,
each value so; a missing value as one value, whether null, NaN
(pandas writes a missing reading so, a CSV an empty cell), the empty text or a column empty
throughout. Each value carries a tag naming its kind (number, text, bytes, instant, time of
day, duration), so that different kinds never meet.

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


def _cells(array: pa.Array) -> tuple[str, U8]:
    """The fixed-width encoding of one column, and its kind: per value a tag byte (0: null),
    then the value. Numbers of any type (integers, floats, booleans) are hashed as the float64
    they equal, so 1850 in a CSV and 1850.0 in Parquet are one value; an integer too large to
    be a float64 exactly keeps its own bytes, under another tag."""
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), bool)
    t = array.type
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
        return "number", np.hstack([tag, _fixed(np.asarray(values, np.float64))])
    tag = valid.astype(np.uint8).reshape(-1, 1)
    if pa.types.is_temporal(t):
        kind, array = _canonical_time(array)
        ticks = pc.cast(array, pa.int64(), safe=False).fill_null(0).to_numpy(zero_copy_only=False)
        return kind, np.hstack([tag, _fixed(np.asarray(ticks, np.int64))])
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        return "text", np.hstack([tag, _text_digests(array)])
    # lists, structs, decimals, categories: their values as JSON text
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
        if pa.types.is_date32(t):  # its own unit (days); Arrow casts date32 to int32 only
            return str(t), pc.cast(array, pa.int32())
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


# as_values: a tag per kind of value, so that a missing value (tag 0, no bytes) is one whatever
# its column's type (a column empty throughout one table is Arrow's null type), while values
# of different kinds never meet: a time of day is no duration, binary bytes are no text.
_TAGS = {"number": 1, "integer": 2, "big": 3, "text": 4, "binary": 5, "json": 6,
         "timestamp": 7, "timestamp-zoned": 8, "date": 7, "time": 9, "duration": 10,
         "list": 11, "struct": 12}  # fmt: skip
_INT64_MAX = 2**63 - 1


def _int64_cells(ints: npt.NDArray[np.int64], valid: npt.NDArray[np.bool_]) -> U8:
    """64-bit integers: as the float64 that holds them exactly (2**60 as an integer or a float
    is one value), else as their own bytes."""
    out = np.zeros((ints.size, 17), np.uint8)
    f = ints.astype(np.float64)
    in_range = (f >= -(2.0**63)) & (f < 2.0**63)  # 2**63 itself would wrap
    back = np.where(in_range, f, 0.0).astype(np.int64)
    exact = valid & in_range & (back == ints)
    other = valid & ~exact
    out[exact, 0] = _TAGS["number"]
    out[exact, 1:9] = _fixed(f[exact])
    out[other, 0] = _TAGS["integer"]
    out[other, 1:9] = _fixed(ints[other])
    return out


def _integer_cells(values: list[int | None]) -> U8:
    """Whole numbers of any size (unsigned 64-bit, whole decimals): those within 64 bits as
    ``_int64_cells`` has them, the others as their text, value by value (they are rare)."""
    fits = [v is not None and -_INT64_MAX - 1 <= v <= _INT64_MAX for v in values]
    ints = np.array([v if ok else 0 for v, ok in zip(values, fits, strict=True)], np.int64)
    out = _int64_cells(ints, np.array(fits, bool))
    for i, v in enumerate(values):
        if v is not None and not fits[i]:
            out[i, 0] = _TAGS["big"]
            digest = hashlib.blake2b(str(v).encode(), digest_size=16).digest()
            out[i, 1:] = np.frombuffer(digest, np.uint8)
    return out


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _time_parts(array: pa.Array) -> tuple[str, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A time value's kind, whole seconds and nanoseconds past them, value by value in any
    unit and any year (9999-12-31, an open end in SQL exports, is beyond nanoseconds since
    1970: converting a batch to them failed for all its values)."""
    t = array.type
    if pa.types.is_date32(t):
        days = pc.cast(array, pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
        seconds = np.asarray(days, np.int64) * 86_400
        return "date", seconds, np.zeros_like(seconds)
    if pa.types.is_date64(t):
        kind, unit = "date", "ms"
    elif pa.types.is_timestamp(t):
        kind, unit = ("timestamp" if t.tz is None else "timestamp-zoned"), t.unit
    elif pa.types.is_time(t):
        kind, unit = "time", t.unit
    elif pa.types.is_duration(t):
        kind, unit = "duration", t.unit
    else:  # intervals: their fields as JSON, under the duration's tag
        texts = pa.array([json.dumps(v, default=str) for v in array.to_pylist()])
        digests = _text_digests(texts)
        return (
            "duration",
            digests[:, :8].copy().view(np.int64).ravel(),
            digests[:, 8:].copy().view(np.int64).ravel(),
        )
    store = pa.int32() if (pa.types.is_date64(t) is False and t.bit_width == 32) else pa.int64()
    ticks = np.asarray(
        pc.cast(pc.cast(array, store), pa.int64()).fill_null(0).to_numpy(zero_copy_only=False),
        np.int64,
    )
    per = _PER_SECOND[unit]
    seconds, rest = np.divmod(ticks, per)
    return kind, seconds, rest * (1_000_000_000 // per)


def _decimal_cells(array: pa.Array, valid: npt.NDArray[np.bool_]) -> U8:
    """Decimals as the numbers they are: whole ones as integers (``_int64_cells``, beyond 64
    bits as text), others as the float64 nearest them, except beyond 2**53, where float64
    holds whole numbers only and would make neighbours one value: there a decimal that is
    not whole is hashed as its own text."""
    import decimal

    t = array.type
    if t.scale <= 0:
        try:
            ints = pc.cast(array, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            return _int64_cells(np.asarray(ints, np.int64), valid)
        except pa.ArrowInvalid:  # a value beyond 64 bits: each value on its own
            return _integer_cells([None if v is None else int(v) for v in array.to_pylist()])
    # Through text: Arrow's direct cast is not correctly rounded (9.87 became
    # 9.870000000000001, one value in eight), parsing the decimal's text is.
    floats = pc.cast(pc.cast(array, pa.string()), pa.float64())
    values = np.asarray(floats.fill_null(0.0).to_numpy(zero_copy_only=False), np.float64) + 0.0
    out = np.zeros((len(array), 17), np.uint8)
    out[valid, 0] = _TAGS["number"]
    out[valid, 1:9] = _fixed(values[valid])
    beyond = np.flatnonzero(valid & (np.abs(values) >= EXACT_INT))
    for i, v in zip(beyond, array.take(pa.array(beyond)).to_pylist(), strict=True):
        if v == v.to_integral_value():
            out[i] = _integer_cells([int(v)])[0]
        else:
            out[i, 0] = _TAGS["big"]
            text = format(v.normalize(decimal.Context(prec=80)), "f")
            out[i, 1:] = np.frombuffer(
                hashlib.blake2b(text.encode(), digest_size=16).digest(), np.uint8
            )
    return out


_NESTED_CHUNK = 1 << 20  # inner values hashed at once: bounds memory for long lists


def _nested_cells(array: pa.Array, valid: npt.NDArray[np.bool_]) -> U8:
    """Lists, maps and structs by their values, each value as ``_value_cells`` has it, so
    [1.5] is one value as list<double> or list<decimal> and not as list<string>; a list is
    the digest of its values in order (an empty one is missing), a map of its entries in any
    order, a struct of its fields' names and values (in the order of the names)."""
    t, n = array.type, len(array)
    out = np.zeros((n, 17), np.uint8)
    if pa.types.is_struct(t):
        # by name: a struct is a mapping, two writers may order its fields differently
        order = sorted(range(t.num_fields), key=lambda i: t.field(i).name)
        names = json.dumps([t.field(i).name for i in order]).encode()
        flat = array.flatten()
        fields = [_value_cells(flat[i]) for i in order]
        matrix = np.ascontiguousarray(np.hstack(fields) if fields else np.zeros((n, 0), np.uint8))
        for i in np.flatnonzero(valid):
            digest = hashlib.blake2b(names + matrix[i].tobytes(), digest_size=16).digest()
            out[i, 1:] = np.frombuffer(digest, np.uint8)
        out[valid, 0] = _TAGS["struct"]
        return out
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t)):
        array = pc.cast(array, pa.large_list(t.value_type))  # fixed-size lists, list views
    offsets = np.asarray(array.offsets.to_numpy(zero_copy_only=False), np.int64)
    values = array.values
    mapping = pa.types.is_map(t)  # its entries in any order: a map is no sequence
    # An empty list is a missing value, as empty text is (a writer's empty cell).
    valid = valid & (offsets[1:] > offsets[:-1])
    start = 0
    while start < n:  # rows whose values fit one chunk (at least one row)
        stop = max(start + 1, int(np.searchsorted(offsets, offsets[start] + _NESTED_CHUNK)) - 1)
        stop = min(stop, n)
        lo = int(offsets[start])
        inner = _value_cells(values.slice(lo, int(offsets[stop]) - lo))
        for row in range(start, stop):
            if valid[row]:
                cells = inner[offsets[row] - lo : offsets[row + 1] - lo]
                part = b"".join(sorted(c.tobytes() for c in cells)) if mapping else cells.tobytes()
                digest = hashlib.blake2b(part, digest_size=16, person=b"list").digest()
                out[row, 1:] = np.frombuffer(digest, np.uint8)
        start = stop
    out[valid, 0] = _TAGS["list"]
    return out


def _value_cells(array: pa.Array) -> U8:
    """One column's cells for ``as_values``: per value a tag naming its kind (0: missing) and
    16 bytes (zeros when missing)."""
    if pa.types.is_dictionary(array.type):
        array = pc.cast(array, array.type.value_type)
    t, n = array.type, len(array)
    out = np.zeros((n, 17), np.uint8)
    if pa.types.is_null(t):
        return out
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), bool)
    if pa.types.is_decimal(t):
        return _decimal_cells(array, valid)
    if pa.types.is_integer(t):
        if pa.types.is_unsigned_integer(t) and t.bit_width == 64:
            return _integer_cells(array.to_pylist())
        ints = pc.cast(array, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        return _int64_cells(np.asarray(ints, np.int64), valid)
    if pa.types.is_boolean(t):
        array, t = pc.cast(array, pa.float64()), pa.float64()
    if pa.types.is_floating(t):
        values = np.asarray(array.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False))
        values = values + 0.0  # -0.0 is 0.0: one writer keeps the sign of a zero, another not
        valid &= ~np.isnan(values)  # NaN: missing, as null
        out[valid, 0] = _TAGS["number"]
        out[valid, 1:9] = _fixed(np.asarray(values[valid], np.float64))
        return out
    if pa.types.is_temporal(t):
        kind, seconds, nanos = _time_parts(array)
        out[valid, 0] = _TAGS[kind]
        out[valid, 1:9] = _fixed(seconds[valid])
        out[valid, 9:17] = _fixed(nanos[valid])
        return out
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        present = valid & np.asarray(
            pc.fill_null(pc.not_equal(array, ""), False).to_numpy(zero_copy_only=False), bool
        )  # the empty text is missing, as an empty CSV cell is null in Parquet
        out[present, 0] = _TAGS["text"]
        out[present, 1:] = _text_digests(array)[present]
        return out
    if pa.types.is_fixed_size_binary(t):
        array, t = pc.cast(array, pa.binary()), pa.binary()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        out[valid, 0] = _TAGS["binary"]
        out[valid, 1:] = _text_digests(array)[valid]
        return out
    if pa.types.is_nested(t) and not pa.types.is_union(t):
        return _nested_cells(array, valid)
    texts = pa.array([json.dumps(v, default=str) for v in array.to_pylist()])
    out[valid, 0] = _TAGS["json"]
    out[valid, 1:] = _text_digests(texts)[valid]
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
    if as_values:
        cells = [("", _value_cells(batch.column(name))) for name in names]
        head = json.dumps(names)
    else:
        cells = [_cells(batch.column(name)) for name in names]
        head = json.dumps([[name, kind] for name, (kind, _) in zip(names, cells, strict=True)])
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
