"""ParquetPredictionSink: every item's outcome, written as the run goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _strings(values: Any) -> pa.Array:
    """Arrow strings from an Arrow array (as is) or a list of str/None."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if values.type == pa.string() else values.cast(pa.string())
    return pa.array(values, pa.string())


def score_column(label: str) -> str:
    """Name of the score column of a class in ``predictions.parquet``."""
    return f"score_{label}"


class ParquetPredictionSink:
    """Writes ``item_id, label, predicted, correct, score_<class>..., error`` rows to Parquet.

    Rows are buffered up to ``row_group_rows`` so that small batches still give well-sized row
    groups; memory stays bounded by that buffer.
    """

    def __init__(self, path: Path, labels: tuple[str, ...], row_group_rows: int = 131_072) -> None:
        self.path = path
        self.labels = labels
        self.row_group_rows = row_group_rows
        self.schema = pa.schema(
            [
                ("item_id", pa.string()),
                ("label", pa.string()),
                ("predicted", pa.string()),
                ("correct", pa.bool_()),
                *((score_column(label), pa.float64()) for label in labels),
                ("error", pa.string()),
            ]
        )
        self._label_values = pa.array(labels, pa.string())
        self._writer = pq.ParquetWriter(path, self.schema, compression="lz4")
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0

    def write(
        self,
        item_ids: Any,
        labels: Any,
        predicted: npt.NDArray[np.int64],
        scores: npt.NDArray[np.float64],
        errors: list[str | None],
    ) -> None:
        ids = _strings(item_ids)
        label_arr = _strings(labels)
        # Predicted class names through a dictionary: no Python string per item.
        codes = pa.array(predicted, pa.int32(), mask=predicted < 0)
        pred_arr = pa.DictionaryArray.from_arrays(codes, self._label_values).cast(pa.string())
        error_arr = pa.array(errors, pa.string())
        correct = pc.if_else(
            error_arr.is_null(), pc.equal(label_arr, pred_arr), pa.scalar(None, pa.bool_())
        )
        columns = [ids, label_arr, pred_arr, correct]
        columns += [
            pa.array(scores[:, k], pa.float64(), from_pandas=True) for k in range(len(self.labels))
        ]
        columns.append(error_arr)
        self._buffer.append(pa.RecordBatch.from_arrays(columns, schema=self.schema))
        self._buffered += len(ids)
        if self._buffered >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_batches(self._buffer, self.schema))
            self._buffer, self._buffered = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()
