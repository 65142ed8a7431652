"""Arrow arrays to and from numpy through their buffers, for the pass's hot path.

``pa.array`` asks pandas whether its input is a pandas object on every call, and an array's
``to_numpy`` goes through pandas' shim as well: either imports pandas (0.3 s) on its first call
in a process, a third of a small validation's own work once the model's outputs are reused. These
give the same arrays from buffers without it. A layer of its own, under every adapter (the store
writes with it, the datasets' decoders read with it) and above the pure core.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

_NUMPY = {
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.float64(): np.float64,
    pa.uint8(): np.uint8,
}


def _bitmap(null: npt.NDArray[np.bool_] | None) -> tuple[pa.Buffer | None, int]:
    if null is None or not null.any():
        return None, 0
    return pa.py_buffer(np.packbits(~null, bitorder="little")), int(null.sum())


def numbers(
    values: npt.NDArray[np.generic], type_: pa.DataType, null: npt.NDArray[np.bool_] | None = None
) -> pa.Array:
    """``pa.array(values, type_, mask=null)`` for int32, int64, float64 and uint8."""
    data = np.ascontiguousarray(values, dtype=_NUMPY[type_])
    bitmap, n_null = _bitmap(null)
    return pa.Array.from_buffers(type_, len(data), [bitmap, pa.py_buffer(data)], n_null)


def floats(values: npt.NDArray[np.floating]) -> pa.Array:
    """``pa.array(values, pa.float64(), from_pandas=True)``: NaN becomes null."""
    data = np.asarray(values, np.float64)
    return numbers(data, pa.float64(), np.isnan(data))


def validity(column: pa.Array) -> npt.NDArray[np.bool_]:
    """Which values are not null, from the validity bitmap."""
    n = len(column)
    if column.null_count == 0:
        return np.ones(n, bool)
    bits = np.unpackbits(np.frombuffer(column.buffers()[0], np.uint8), bitorder="little")
    return bits[column.offset : column.offset + n].astype(bool)


def as_floats(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.floating]:
    """A numeric column as numpy, null as NaN: float32 and float64 without nulls as they are
    (no copy), anything else cast to float64."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count == 0 and column.type in (pa.float32(), pa.float64()):
        dtype = np.float32 if column.type == pa.float32() else np.float64
    else:
        column = column.cast(pa.float64())
        if column.null_count:
            column = column.fill_null(np.nan)
        dtype = np.float64
    width = np.dtype(dtype).itemsize
    return np.frombuffer(column.buffers()[1], dtype, len(column), column.offset * width)


def as_ints(column: pa.Array, fill: int) -> npt.NDArray[np.int64]:
    """An integer column as int64, null as ``fill``."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dtype = np.dtype(f"int{column.type.bit_width}")
    raw = np.frombuffer(column.buffers()[1], dtype, len(column), column.offset * dtype.itemsize)
    out = raw.astype(np.int64)
    if column.null_count:
        out[~validity(column)] = fill
    return out


def as_bools(column: pa.Array) -> npt.NDArray[np.bool_]:
    """A boolean column as numpy, null as False."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    bits = np.unpackbits(np.frombuffer(column.buffers()[1], np.uint8), bitorder="little")
    out: npt.NDArray[np.bool_] = bits[column.offset : column.offset + n].astype(bool)
    return out & validity(column) if column.null_count else out


def bools(values: npt.NDArray[np.bool_]) -> pa.Array:
    """``pa.array(values, pa.bool_())`` for a numpy boolean array."""
    data = np.packbits(np.asarray(values, bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(data)])


def strings(values: Sequence[str | None]) -> pa.Array:
    """``pa.array(values, pa.string())`` for a list of str and None."""
    encoded = [b"" if v is None else v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    if offsets[-1] >= 2**31:  # past what 32-bit offsets address: pyarrow chunks it
        return pa.array(list(values), pa.string())
    bitmap, n_null = _bitmap(np.fromiter((v is None for v in values), bool, len(values)))
    buffers = [bitmap, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(encoded), buffers, n_null)


def string(value: str) -> pa.Scalar:
    """``pa.scalar(value, pa.string())`` (which imports pandas too)."""
    return strings([value])[0]


def null(type_: pa.DataType) -> pa.Scalar:
    """``pa.scalar(None, type_)``."""
    return pa.nulls(1, type_)[0]


def number(value: float) -> pa.Scalar:
    """``pa.scalar(value, pa.float64())``."""
    return numbers(np.array([value], np.float64), pa.float64())[0]
