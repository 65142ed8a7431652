"""Row digests: what recognises an unchanged table row in a later dataset version. Checked
against a plain per-row reimplementation, and for the properties reuse depends on: labels and
ids left out, any value, name or type change seen, batch boundaries irrelevant."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pyarrow as pa
import pytest

from assay.datasets import columns as cols
from assay.datasets.row_digests import row_digests


def _reference(row: dict[str, object], schema: pa.Schema, names: list[str]) -> bytes:
    """One row's digest, built value by value with struct and hashlib."""

    def kind(t: pa.DataType) -> str:
        numeric = pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t)
        return "number" if numeric else "text"

    head = json.dumps([[n, kind(schema.field(n).type)] for n in names]).encode()
    key = hashlib.blake2b(head, digest_size=32).digest()
    data = b""
    for name in names:
        value, t = row[name], schema.field(name).type
        data += b"\x00" if value is None else b"\x01"
        if kind(t) == "number":
            data += struct.pack("<d", 0.0 if value is None else float(value))  # type: ignore[arg-type]
        else:
            text = b"" if value is None else json.dumps(value).encode()
            data += bytes(16) if value is None else hashlib.blake2b(text, digest_size=16).digest()
    return hashlib.blake2b(data, digest_size=16, key=key).digest()


def _batch(**columns: object) -> pa.RecordBatch:
    n = len(next(iter(columns.values())))  # type: ignore[arg-type]
    base = {
        cols.ITEM_ID: pa.array([f"i{k}" for k in range(n)]),
        cols.LABEL: pa.array(["bad"] * n),
    }
    return pa.RecordBatch.from_pydict({**base, **columns})  # type: ignore[arg-type]


def test_digests_match_a_per_row_reference() -> None:
    rng = np.random.default_rng(0)
    n = 300
    batch = _batch(
        a=pa.array(rng.normal(size=n)),
        b=pa.array(rng.integers(-5, 5, n)),
        line=pa.array(rng.choice(["L1", "L2", None], n).tolist()),
        ok=pa.array(rng.uniform(size=n) > 0.5),
        label=pa.array(["x"] * n),
    )
    names = ["a", "b", "line", "ok"]
    got = row_digests(batch, "label").to_pylist()
    rows = batch.to_pylist()
    assert got == [_reference(r, batch.schema, names) for r in rows]


def test_labels_and_ids_are_left_out_and_everything_else_counts() -> None:
    base = _batch(a=[1.0, 2.0], label=["bad", "good"])
    relabelled = _batch(a=[1.0, 2.0], label=["good", "bad"])
    relabelled = relabelled.set_column(
        relabelled.schema.get_field_index(cols.ITEM_ID), cols.ITEM_ID, pa.array(["x", "y"])
    )
    assert row_digests(base, "label").equals(row_digests(relabelled, "label"))
    changed = [
        _batch(a=[1.0, 2.5], label=["bad", "good"]),  # a value
        _batch(a=[1.0, 2.0000000001], label=["bad", "good"]),  # the last bits of one
        _batch(b=[1.0, 2.0], label=["bad", "good"]),  # a name
        _batch(a=["1", "2"], label=["bad", "good"]),  # numbers become text
        _batch(a=[1.0, 2.0], label=["bad", "good"], extra=[None, None]),  # a column
    ]
    plain = row_digests(_batch(a=[1.0, 2.0], label=["bad", "good"]), "label").to_pylist()
    for batch in changed:
        assert row_digests(batch, "label").to_pylist()[1] != plain[1]


@pytest.mark.parametrize(
    ("left", "right"),
    [([0.0], [-0.0]), ([0.0], [None]), ([float("nan")], [None]), ([""], [None])],
)
def test_values_that_a_model_may_read_differently_are_different(left: list, right: list) -> None:
    assert row_digests(_batch(a=left), None) != row_digests(_batch(a=right), None)


def test_a_row_has_the_same_digest_in_any_batch() -> None:
    rng = np.random.default_rng(1)
    table = pa.Table.from_batches(
        [_batch(a=pa.array(rng.normal(size=100)), s=pa.array(rng.choice(["p", "q"], 100)))]
    )
    whole = row_digests(table.to_batches()[0], None).to_pylist()
    pieces = [row_digests(b, None).to_pylist() for b in table.to_batches(max_chunksize=7)]
    assert [d for piece in pieces for d in piece] == whole
    assert len(set(whole)) == 100


def test_a_number_is_one_value_whatever_its_type_and_ids_are_left_out() -> None:
    """1850 read from a CSV (int64) and 1850.0 from Parquet are the same input to a model; the
    id column is no part of an item's content; a large integer keeps its exact value."""
    ints = _batch(speed=pa.array([1850, 1900], pa.int64()), run=pa.array(["r1", "r2"]))
    floats = _batch(speed=pa.array([1850.0, 1900.0]), run=pa.array(["x9", "x8"]))
    assert row_digests(ints, None, "run").equals(row_digests(floats, None, "run"))
    assert not row_digests(ints, None).equals(row_digests(floats, None))
    big = _batch(n=pa.array([2**60, 2**60 + 1], pa.int64()))
    a, b = row_digests(big, None).to_pylist()
    assert a != b  # as float64 both would be 2**60


def test_an_experts_label_column_is_covered() -> None:
    """A column named label_<x> may be a model input: changing it must change the digest."""
    one = _batch(label_pos=pa.array([0.5, 1.5]))
    two = _batch(label_pos=pa.array([-0.5, 1.5]))
    assert row_digests(one, "label").to_pylist()[0] != row_digests(two, "label").to_pylist()[0]


def test_an_instant_is_one_value_whatever_its_unit() -> None:
    """A CSV reader stores timestamp[ms], a Parquet file timestamp[us]: the same instants
    hashed as different ticks, and the leakage audit missed rows copied verbatim from the
    training set. Times are hashed in nanoseconds now; a zone is part of the kind, other
    instants and other kinds still differ."""
    ms = [1_767_225_600_000, 1_767_225_660_500]
    as_ms = _batch(at=pa.array(ms, pa.timestamp("ms")))
    as_us = _batch(at=pa.array([v * 1000 for v in ms], pa.timestamp("us")))
    as_s_later = _batch(at=pa.array([v // 1000 + 1 for v in ms], pa.timestamp("s")))
    zoned = _batch(at=pa.array(ms, pa.timestamp("ms", tz="UTC")))
    zoned_elsewhere = _batch(at=pa.array(ms, pa.timestamp("ms", tz="Europe/Berlin")))
    assert row_digests(as_ms, None).equals(row_digests(as_us, None))
    assert row_digests(zoned, None).equals(row_digests(zoned_elsewhere, None))  # one instant
    assert not row_digests(as_ms, None).equals(row_digests(zoned, None))
    assert not row_digests(as_ms, None).equals(row_digests(as_s_later, None))
    days = _batch(on=pa.array([20_454], pa.date32()))
    millis = _batch(on=pa.array([20_454 * 86_400_000], pa.date64()))
    assert row_digests(days, None).equals(row_digests(millis, None))
    far = _batch(at=pa.array([10**13], pa.timestamp("s")))  # year 318857: beyond nanoseconds
    assert len(row_digests(far, None)) == 1


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (pa.array([None], pa.float64()), pa.array([float("nan")])),
        (pa.array([None], pa.string()), pa.array([""])),
    ],
)
def test_as_values_a_missing_value_is_one_value_however_written(
    left: pa.Array, right: pa.Array
) -> None:
    """What the leakage audit and the budget compare: a missing reading written as null, NaN
    or empty text is one value there (pandas, a CSV and SQL each write it their way)."""
    assert row_digests(_batch(a=left), None, as_values=True) == row_digests(
        _batch(a=right), None, as_values=True
    )
    assert row_digests(_batch(a=left), None) != row_digests(_batch(a=right), None)


def test_as_values_decimals_and_categories_are_their_values() -> None:
    import decimal

    import pyarrow.compute as pc

    plain = _batch(a=pa.array([9.87, 10.04]), b=pa.array(["L1", "L2"]))
    written = _batch(
        a=pa.array([decimal.Decimal("9.87"), decimal.Decimal("10.04")], pa.decimal128(6, 2)),
        b=pc.dictionary_encode(pa.array(["L1", "L2"])),
    )
    assert row_digests(plain, None, as_values=True) == row_digests(written, None, as_values=True)
    # What is stored for reuse stays as it was: another type, another digest.
    assert row_digests(plain, None) != row_digests(written, None)


def test_as_values_a_column_empty_throughout_is_missing_values_of_any_type() -> None:
    """A CSV column empty in every row is Arrow's null type: its rows hashed as another kind
    than the other table's (numbers with NaN), and no copied row could match."""
    empty = _batch(a=pa.array([1.0, 2.0]), aux=pa.nulls(2))
    for aux in (pa.array([float("nan")] * 2), pa.array([None, None], pa.string())):
        other = _batch(a=pa.array([1.0, 2.0]), aux=aux)
        assert row_digests(empty, None, as_values=True) == row_digests(other, None, as_values=True)


def test_as_values_whole_decimals_beyond_a_float_stay_apart() -> None:
    """DECIMAL(20, 0) lot numbers above 2**53 were cast to float64 and became one number."""
    import decimal

    lots = [decimal.Decimal(10**19 + k) for k in range(3)]
    digests = row_digests(_batch(lot=pa.array(lots, pa.decimal128(20, 0))), None, as_values=True)
    assert len(set(digests.to_pylist())) == 3
    small = [decimal.Decimal(2**60 + k) for k in range(3)]
    as_decimal = row_digests(
        _batch(lot=pa.array(small, pa.decimal128(20, 0))), None, as_values=True
    )
    as_int = row_digests(_batch(lot=pa.array([2**60 + k for k in range(3)])), None, as_values=True)
    assert as_decimal == as_int and len(set(as_int.to_pylist())) == 3


_BIG = 10**20


def _kinds_of_values() -> list[tuple[str, pa.Array, pa.Array, bool]]:
    import datetime as dt
    import decimal

    d = decimal.Decimal
    return [
        ("a time of day is no duration", pa.array([dt.time(8)], pa.time64("us")),
         pa.array([dt.timedelta(hours=8)], pa.duration("us")), False),
        ("an instant is no duration", pa.array([dt.datetime(1970, 1, 1, 8)], pa.timestamp("us")),
         pa.array([dt.timedelta(hours=8)], pa.duration("us")), False),
        ("the largest unsigned is not -1", pa.array([2**64 - 1], pa.uint64()),
         pa.array([-1], pa.int64()), False),
        ("a decimal beyond 64 bits is not its text", pa.array([d(_BIG)], pa.decimal128(25, 0)),
         pa.array([str(_BIG)]), False),
        ("bytes are not text", pa.array([b'"abc"'], pa.binary()), pa.array(["abc"]), False),
        ("2**60 whole or float", pa.array([2**60]), pa.array([float(2**60)]), True),
        ("a decimal beside a huge one", pa.array([d(5), d(_BIG)], pa.decimal128(25, 0)),
         pa.array([5, 6]), None),
        ("2**60 at two scales", pa.array([d(2**60)], pa.decimal128(22, 2)),
         pa.array([d(2**60)], pa.decimal128(20, 0)), True),
        ("fractional decimals beyond 2**53",
         pa.array([d(2**60 + 1) + d("0.5")], pa.decimal128(38, 18)),
         pa.array([d(2**60 + 2) + d("0.5")], pa.decimal128(38, 18)), False),
        ("a whole decimal beyond 2**53 at a fractional scale",
         pa.array([d(2**60 + 1)], pa.decimal128(38, 18)), pa.array([2**60 + 1]), True),
        ("a zero's sign", pa.array([-0.0]), pa.array([0.0]), True),
        ("fixed-size bytes", pa.array([b"ab"], pa.binary(2)), pa.array([b"ab"]), True),
        ("list of decimals or doubles", pa.array([[d("1.5")]], pa.list_(pa.decimal128(5, 2))),
         pa.array([[1.5]]), True),
        ("list of decimals or texts", pa.array([[d("1.5")]], pa.list_(pa.decimal128(5, 2))),
         pa.array([["1.5"]]), False),
        ("fixed-size list or list", pa.array([[1, 2]], pa.list_(pa.int64(), 2)),
         pa.array([[1.0, 2.0]]), True),
        ("an empty list is missing, as empty text is", pa.array([[]], pa.list_(pa.int64())),
         pa.array([None], pa.list_(pa.int64())), True),
        ("a map's entries in any order",
         pa.array([[("a", 1), ("b", 2)]], pa.map_(pa.string(), pa.int64())),
         pa.array([[("b", 2), ("a", 1)]], pa.map_(pa.string(), pa.int64())), True),
        ("a map's values", pa.array([[("a", 1)]], pa.map_(pa.string(), pa.int64())),
         pa.array([[("a", 2)]], pa.map_(pa.string(), pa.int64())), False),
        ("a list is not its first value", pa.array([[1.0]]), pa.array([1.0]), False),
        ("struct fields in any order", pa.array([{"a": 1, "b": "x"}]),
         pa.array([{"b": "x", "a": 1.0}]), True),
        ("struct values", pa.array([{"a": 1, "b": "x"}]), pa.array([{"a": 2, "b": "x"}]), False),
    ]  # fmt: skip


@pytest.mark.parametrize(("what", "left", "right", "same"), _kinds_of_values())
def test_as_values_kinds_of_values_meet_only_where_they_are_one_value(
    what: str, left: pa.Array, right: pa.Array, same: bool | None
) -> None:
    """From a review: a time of day hashed as the duration of as many hours, uint64 2**64-1
    as int64 -1, bytes as their text, and a whole decimal column holding one value beyond 64
    bits turned every value of its batch into text, so 5 no longer met 5."""
    a = row_digests(_batch(a=left), None, as_values=True).to_pylist()
    b = row_digests(_batch(a=right), None, as_values=True).to_pylist()
    if same is None:  # the first row only
        assert a[0] == b[0], what
    else:
        assert (a == b) is same, what


def test_as_values_long_lists_are_hashed_in_chunks_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedding-like list columns are hashed a bounded number of values at a time; where the
    chunks fall changes nothing, a sliced batch neither."""
    import assay.datasets.row_digests as rd

    lists = pa.array([[float(i + k) for k in range(1 + i % 4)] for i in range(40)] + [None])
    whole = row_digests(_batch(e=lists), None, as_values=True)
    monkeypatch.setattr(rd, "_NESTED_CHUNK", 3)
    assert row_digests(_batch(e=lists), None, as_values=True) == whole
    sliced = row_digests(_batch(e=lists.slice(5)), None, as_values=True)
    assert sliced.to_pylist() == whole.to_pylist()[5:]
    assert len(set(whole.to_pylist())) == 41
