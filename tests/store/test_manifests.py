"""Coding manifest columns for slicing."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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
