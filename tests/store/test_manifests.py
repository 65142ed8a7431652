"""Coding manifest columns for slicing."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.store.manifests import coded_column


def test_columns_are_coded_as_categories_bins_or_refused(tmp_path: Path) -> None:
    n = 600
    rng = np.random.default_rng(0)
    # 30 categories: B00-B19 25 times each, B20-B29 10 times each; the 20 most frequent + other.
    batches = [f"B{i % 20:02d}" for i in range(500)] + [f"B{20 + i % 10:02d}" for i in range(100)]
    start = datetime(2026, 1, 1)
    table = pa.table(
        {
            "batch": batches,
            "serial": [f"S{i:05d}" for i in range(n)],  # an identifier: not sliceable
            "camera": rng.integers(1, 5, n),  # few integers: categories
            "speed": rng.uniform(1000, 2000, n),  # numbers: quantile bins
            "when": pa.array([start + timedelta(hours=i) for i in range(n)], pa.timestamp("s")),
            "boxes": pa.array([[1, 2]] * n, pa.list_(pa.int64())),  # nested: not sliceable
        }
    )
    path = tmp_path / "m.parquet"
    pq.write_table(table, path)
    codes, labels = coded_column(path, "batch")  # type: ignore[misc]
    assert len(labels) == 21 and labels[-1] == "other"
    assert (codes >= 0).all()
    frequent = {f"B{i:02d}" for i in range(20)}
    assert [labels[c] for c in codes] == [b if b in frequent else "other" for b in batches]
    assert coded_column(path, "serial") is None
    assert coded_column(path, "boxes") is None
    codes, labels = coded_column(path, "camera")  # type: ignore[misc]
    assert sorted(labels) == ["1", "2", "3", "4"]
    codes, labels = coded_column(path, "speed")  # type: ignore[misc]
    assert len(labels) == 5 and labels[0].startswith("[")
    codes, labels = coded_column(path, "when")  # type: ignore[misc]
    assert labels[0].startswith("[2026-01-01 00:00")


def test_timestamps_finer_than_a_second_are_binned_not_refused(tmp_path: Path) -> None:
    """Bug: a Parquet timestamp[us] column with sub-second values made the cast to seconds raise
    (ArrowInvalid "would lose data"), which stopped the error-slice search and the validation."""
    start = datetime(2026, 3, 1, 8, 0, 0, 250_000)
    stamps = [start + timedelta(minutes=7 * i, microseconds=i) for i in range(200)]
    path = tmp_path / "m.parquet"
    pq.write_table(
        pa.table(
            {
                "made": pa.array(stamps, pa.timestamp("us")),
                "made_utc": pa.array(stamps, pa.timestamp("ms", tz="UTC")),
            }
        ),
        path,
    )
    for name in ("made", "made_utc"):
        codes, labels = coded_column(path, name)  # type: ignore[misc]
        assert len(labels) == 5 and labels[0].startswith("[2026-03-01 08:00")
        assert (np.bincount(codes) == 40).all()


def test_streamed_coders_equal_whole_column_coders(tmp_path: Path, monkeypatch: Any) -> None:
    """Above the values it may hold, a numeric column's bins come from radix passes over the
    manifest; they equal the bins of the whole column at once (np.quantile)."""
    from assay.store import coders

    rng = np.random.default_rng(3)
    n = 20_000
    table = pa.table(
        {
            "speed": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(7, 2, n)),
            "temp": rng.normal(20, 3, n).astype(np.float32),
            "count": rng.integers(-5, 10**6, n),
            "few": rng.choice([0.5, 1.5, 2.5], n),
            "day": pa.array(rng.integers(0, 400, n).astype("datetime64[D]")),
        }
    )
    path = tmp_path / "m.parquet"
    pq.write_table(table, path, row_group_size=3000)
    whole = {name: coded_column(path, name) for name in table.column_names}
    monkeypatch.setattr(coders, "QUANTILE_VALUES", 500)
    monkeypatch.setattr(coders, "TABLE_BATCH_BYTES", 8 * 5 * 777)
    fitted = coders.fit_coders(path, table.column_names)
    for name in table.column_names:
        coder = fitted[name]
        assert coder is not None and whole[name] is not None
        codes, labels = whole[name]  # type: ignore[misc]
        assert coder.labels == labels, name
        assert np.array_equal(coder.encode(table.column(name)), codes), name
    assert fitted["few"] is not None and fitted["few"].edges is None  # three values: categories


def test_take_values_reads_only_the_wanted_rows_in_the_asked_order(tmp_path: Path) -> None:
    from assay.store.manifests import take_column, take_values

    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": [f"i{k}" for k in range(10_000)]}), path, row_group_size=999)
    rows = np.array([9_999, 3, 3, 5_000, 0, 998, 999])
    assert take_values(path, "id", rows).to_pylist() == [f"i{k}" for k in rows]
    assert take_column(path, "id", rows[:2]) == ["i9999", "i3"]
    empty = take_values(path, "id", np.array([], np.int64))
    assert len(empty) == 0 and empty.type == pa.string()
    with pytest.raises(IndexError, match="10000"):
        take_values(path, "id", np.array([10_000]))


def test_text_with_too_many_distinct_values_to_count_is_not_sliced(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Counting a text column's values holds them all; past MAX_DISTINCT_TEXT the column is taken
    for an identifier rather than counted on (a crafted column of millions of distinct values)."""
    from assay.store import coders

    path = tmp_path / "m.parquet"
    values = [f"lot-{i % 100}" for i in range(2_000)]
    pq.write_table(pa.table({"lot": values}), path, row_group_size=300)
    fitted = coders.fit_coders(path, ["lot"])["lot"]
    assert fitted is not None and len(fitted.labels) == 21  # 20 lots + other
    monkeypatch.setattr(coders, "MAX_DISTINCT_TEXT", 50)
    assert coders.fit_coders(path, ["lot"])["lot"] is None
