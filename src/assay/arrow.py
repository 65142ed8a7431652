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
import pyarrow.compute as pc

_NUMPY = {
    pa.int32(): np.int32,
    pa.int64(): np.int64,
    pa.float32(): np.float32,
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
    """``pa.array(values, type_, mask=null)`` for int32, int64, float32, float64 and uint8; like it, a
    value the type cannot hold is refused (ValueError), never wrapped."""
    dtype = np.dtype(_NUMPY[type_])
    source = np.asarray(values)
    if dtype.kind in "iu" and source.size and source.dtype != dtype:
        if source.dtype.kind not in "iub":
            raise ValueError(f"{source.dtype} values are not {type_}")
        info = np.iinfo(dtype)  # type: ignore[type-var]
        if source.min() < info.min or source.max() > info.max:
            raise ValueError(f"a value is out of the range of {type_}")
    data = np.ascontiguousarray(source, dtype=dtype)
    bitmap, n_null = _bitmap(null)
    return pa.Array.from_buffers(type_, len(data), [bitmap, pa.py_buffer(data)], n_null)


def floats(values: npt.NDArray[np.floating]) -> pa.Array:
    """``pa.array(values, pa.float64(), from_pandas=True)``: NaN becomes null."""
    data = np.asarray(values, np.float64)
    return numbers(data, pa.float64(), np.isnan(data))


def validity(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    """Which values are not null, as ``is_valid`` says (a dictionary array's null entries and a
    null-typed column included)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count == 0 and not pa.types.is_dictionary(column.type):
        return np.ones(len(column), bool)
    return _bits(pc.is_valid(column))


def _bits(column: pa.Array) -> npt.NDArray[np.bool_]:
    """The values of a boolean array without nulls."""
    n = len(column)
    bits = np.unpackbits(np.frombuffer(column.buffers()[1], np.uint8), bitorder="little")
    out: npt.NDArray[np.bool_] = bits[column.offset : column.offset + n].astype(bool)
    return out


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


def as_ints(column: pa.Array | pa.ChunkedArray, fill: int) -> npt.NDArray[np.int64]:
    """A signed or unsigned integer column as int64, null as ``fill``."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_integer(column.type) or column.type == pa.uint64():
        raise TypeError(
            f"as_ints reads signed or unsigned integers up to 63 bits, not {column.type}"
        )
    kind = "int" if pa.types.is_signed_integer(column.type) else "uint"
    dtype = np.dtype(f"{kind}{column.type.bit_width}")
    raw = np.frombuffer(column.buffers()[1], dtype, len(column), column.offset * dtype.itemsize)
    out = raw.astype(np.int64)
    if column.null_count:
        out[~validity(column)] = fill
    return out


def as_bools(column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.bool_]:
    """A boolean column as numpy, null as False."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_boolean(column.type):
        raise TypeError(f"as_bools reads booleans, not {column.type}")
    out = _bits(column)
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
