"""ParquetPredictionSink: every item's outcome, written as the run goes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


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
        self._writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0

    def write(
        self,
        item_ids: list[str],
        labels: list[str | None],
        predicted: list[str | None],
        scores: npt.NDArray[np.float64],
        errors: list[str | None],
    ) -> None:
        label_arr = pa.array(labels, pa.string())
        pred_arr = pa.array(predicted, pa.string())
        error_arr = pa.array(errors, pa.string())
        judged = pa.array([e is None for e in errors])
        correct = pc.if_else(judged, pc.equal(label_arr, pred_arr), pa.scalar(None, pa.bool_()))
        columns = [pa.array(item_ids, pa.string()), label_arr, pred_arr, correct]
        columns += [
            pa.array(scores[:, k], pa.float64(), from_pandas=True) for k in range(len(self.labels))
        ]
        columns.append(error_arr)
        self._buffer.append(pa.RecordBatch.from_arrays(columns, schema=self.schema))
        self._buffered += len(item_ids)
        if self._buffered >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.Table.from_batches(self._buffer, self.schema))
            self._buffer, self._buffered = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()
