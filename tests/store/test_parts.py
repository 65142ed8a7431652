"""Parts of one file written by two versions (a run checkpointed by one, resumed by a later one
that keeps a column more) combine into one file, with nulls where the older parts had none."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from assay.store.parquet import PartedWriter


def test_a_resume_by_a_version_keeping_a_column_more_combines_its_parts(tmp_path: Path) -> None:
    """A segmentation run checkpointed before runs kept ``pixel_counts`` and resumed after:
    joining the parts raised "Table schema does not match schema used to create file", the run
    was marked failed and could not be resumed again (a hostile review)."""
    old = pa.schema([("item_id", pa.string()), ("iou", pa.float64())], metadata={b"k": b"v"})
    new = pa.schema(
        [("item_id", pa.string()), ("iou", pa.float64()), ("pixel_counts", pa.list_(pa.int64()))],
        metadata={b"k": b"v"},
    )
    path = tmp_path / "predictions.parquet"
    before = PartedWriter(path, old, ("item_id",))
    before.write_table(pa.table({"item_id": ["a", "b"], "iou": [0.5, None]}, schema=old))
    committed = before.commit()
    after = PartedWriter(path, new, ("item_id",), committed)
    after.write_table(
        pa.table({"item_id": ["c"], "iou": [0.9], "pixel_counts": [[1, 2, 3]]}, schema=new)
    )
    after.close()
    table = pq.read_table(path)
    assert table.schema.names == ["item_id", "iou", "pixel_counts"]
    assert table.schema.metadata == {b"k": b"v"}
    assert table.to_pylist() == [
        {"item_id": "a", "iou": 0.5, "pixel_counts": None},
        {"item_id": "b", "iou": None, "pixel_counts": None},
        {"item_id": "c", "iou": 0.9, "pixel_counts": [1, 2, 3]},
    ]
