"""A Spark task's batches are the local engine's, item for item (no Spark needed): a model
whose outputs depend on its batch answered 3% of a review's items otherwise on Spark, whose
tasks started between batches and cut batches at row-group ends."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.engines.spark import _ranges, _read_rows
from assay.store.manifests import read_manifest


@pytest.mark.parametrize(
    ("n", "row_group", "batch_rows", "rows_per_task"),
    [(1000, 100, 64, 200), (1000, 333, 64, 64), (5000, 65_536, 700, 2000), (10, 3, 4, 1)],
)
def test_the_tasks_batches_are_the_local_engines(
    tmp_path: Path, n: int, row_group: int, batch_rows: int, rows_per_task: int
) -> None:
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"x": list(range(n))}), path, row_group_size=row_group)
    local = [b.column(0).to_pylist() for b in read_manifest(path, batch_rows, ["x"])]
    tasks = [
        b.column(0).to_pylist()
        for start, stop in _ranges(n, rows_per_task, batch_rows)
        for b in _read_rows(str(path), ["x"], start, stop, batch_rows)
    ]
    assert tasks == local
