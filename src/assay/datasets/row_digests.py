"""Per-row content digests of a table's items, so that a later version's unchanged rows are
recognised (``assay validate`` reuses a model's recorded predictions for them).

A row's digest covers what a model could read of it: every column except the item id and the
labels (the label column, each expert's ``label_<name>`` column, the reserved columns). A
corrected label keeps the digest; any changed feature or metadata value changes it, and so do a
renamed or retyped column (names and types are hashed first). Values are hashed as stored, not
normalised (-0.0 is not 0.0, one NaN payload is not another): a model may read them differently.

The digest is BLAKE2b-128 of a fixed-width encoding of the row: per column a validity byte and
the value (8 bytes for numbers and times, the 16-byte digest of the text for anything else).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from assay.datasets import columns as cols

DIGEST_TYPE = pa.binary(16)
U8 = npt.NDArray[np.uint8]


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


def _cells(array: pa.Array) -> U8:
    """The fixed-width encoding of one column: a validity byte, then the value."""
    valid = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), np.uint8).reshape(-1, 1)
    t = array.type
    if pa.types.is_floating(t):
        values = _fixed(array.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False))
    elif pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_temporal(t):
        values = _fixed(
            pc.cast(array, pa.int64(), safe=False).fill_null(0).to_numpy(zero_copy_only=False)
        )
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        values = _text_digests(array)
    else:  # lists, structs, decimals: their values as JSON text
        values = _text_digests(pa.array([json.dumps(v, default=str) for v in array.to_pylist()]))
    return np.hstack([valid, values])


def input_columns(schema: pa.Schema, label_column: str | None) -> list[str]:
    """The columns a row's digest covers, in table order."""
    skip: Collection[str] = {
        *cols.RESERVED,
        *cols.annotator_columns(schema.names),
        *((label_column,) if label_column else ()),
    }
    return [n for n in schema.names if n not in skip]


def row_digests(batch: pa.RecordBatch, label_column: str | None) -> pa.Array:
    """One 16-byte digest per row of ``batch`` (see the module's docstring)."""
    names = input_columns(batch.schema, label_column)
    head = json.dumps([[n, str(batch.schema.field(n).type)] for n in names]).encode()
    key = hashlib.blake2b(head, digest_size=32).digest()
    n = batch.num_rows
    parts = [_cells(batch.column(name)) for name in names]
    matrix = np.ascontiguousarray(np.hstack(parts) if parts else np.zeros((n, 0), np.uint8))
    width = matrix.shape[1]
    data = matrix.tobytes()
    digests = b"".join(
        hashlib.blake2b(data[i * width : (i + 1) * width], digest_size=16, key=key).digest()
        for i in range(n)
    )
    return pa.FixedSizeBinaryArray.from_buffers(DIGEST_TYPE, n, [None, pa.py_buffer(digests)])


def with_row_digests(batch: pa.RecordBatch, label_column: str | None) -> pa.RecordBatch:
    """``batch`` with its rows' digests in ``__digest``."""
    return batch.append_column(pa.field(cols.DIGEST, DIGEST_TYPE), row_digests(batch, label_column))
